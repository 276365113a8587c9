import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type Backend, prepareBackend, STORE_KINDS, type StoreKind } from '../backends/stores.js'
import { tally } from '../tally.js'
import { byToken, mostAtOnce, tokenTimeInversions, writerOverlaps } from './intervals.js'
import type { WorkerTask } from './protocol.js'
import { runWorkers, type TaskResult } from './run_workers.js'

const WORKERS = 8
const LIMIT = 3
const SECTIONS_PER_WORKER = 16
const WRITE_PROBABILITY = 0.25
/** As in the mutex run: DynamoDB Local answers fastest when polled least. */
const MAX_RETRY_DELAY: Record<StoreKind, number> = { memory: 20, redis: 20, upstash: 20, postgres: 20, mysql: 20, dynamodb: 50 }

/**
 * How long each read or write section holds. Readers show they share only if one still holds when the next
 * is granted: DynamoDB Local takes tens of ms per request under this load, longer than the others' holds.
 */
const READ_WRITE_HOLD: Record<StoreKind, { min: number; max: number }> = {
  memory: { min: 1, max: 4 },
  redis: { min: 1, max: 4 },
  upstash: { min: 1, max: 4 },
  postgres: { min: 1, max: 4 },
  mysql: { min: 1, max: 4 },
  dynamodb: { min: 20, max: 60 },
}

/**
 * Semaphores and read-write locks across 8 OS processes, each with its own connection: the same workers as
 * the mutex run, taking a permit or a read/write lock for each section instead. Holder intervals are what
 * the workers saw (acquire resolved .. release sent) on one monotonic clock, inside the store's own grant.
 */
describe.each(STORE_KINDS)(`%s: semaphores and read-write locks across ${WORKERS} processes`, (kind) => {
  let backend: Backend
  let scratch: string
  let counterFile: string
  let permits: TaskResult
  let readWrite: TaskResult

  beforeAll(async () => {
    backend = await prepareBackend(kind)
    scratch = await mkdtemp(join(tmpdir(), 'verrou-torture-shared-'))
    counterFile = join(scratch, 'counter')
    await writeFile(counterFile, '0')
    const common = { spec: backend.spec, maxRetryDelay: MAX_RETRY_DELAY[kind], ttl: 10_000, fenced: false }
    const tasks: WorkerTask[] = [
      {
        ...common,
        key: `permits:${Math.random().toString(36).slice(2)}`,
        sections: SECTIONS_PER_WORKER,
        hold: { min: 1, max: 6 },
        shared: { kind: 'semaphore', limit: LIMIT },
      },
      {
        ...common,
        key: `document:${Math.random().toString(36).slice(2)}`,
        sections: SECTIONS_PER_WORKER,
        hold: READ_WRITE_HOLD[kind],
        counterFile,
        shared: { kind: 'read-write', writeProbability: WRITE_PROBABILITY },
      },
    ]
    ;[permits, readWrite] = (await runWorkers(tasks, WORKERS, 100_000)) as [TaskResult, TaskResult]
    tally('criticalSections', kind, permits.records.length, 'semaphore')
    tally('criticalSections', kind, readWrite.records.length, 'read-write')
  })

  afterAll(async () => {
    await backend?.dispose()
    if (scratch) await rm(scratch, { recursive: true, force: true })
  })

  test(`limit ${LIMIT}: never more than ${LIMIT} permit holders at once, and permits are really shared`, () => {
    const { records, runMs } = permits
    expect(records).toHaveLength(WORKERS * SECTIONS_PER_WORKER)
    expect(records.filter((record) => record.release !== 'released')).toEqual([])
    if (kind !== 'memory') expect(new Set(records.map((record) => record.pid)).size).toBe(WORKERS)
    const most = mostAtOnce(records, ['permit'])
    expect(most).toBeLessThanOrEqual(LIMIT)
    // Eight workers wanting three permits: more than one must have held at once, or it is a mutex.
    expect(most).toBeGreaterThan(1)
    byToken(records)
    expect(tokenTimeInversions(records)).toEqual([])
    console.log(`${kind}: ${records.length} permits in ${runMs.toFixed(0)} ms, at most ${most} held at once`)
  })

  test('read-write: never a reader beside a writer, never two writers, no lost write; readers do share', async () => {
    const { records, runMs } = readWrite
    expect(records).toHaveLength(WORKERS * SECTIONS_PER_WORKER)
    expect(records.filter((record) => record.release !== 'released')).toEqual([])
    expect(writerOverlaps(records)).toEqual([])
    const writes = records.filter((record) => record.mode === 'write').length
    expect(writes).toBeGreaterThan(0)
    // Every writer's unprotected read-modify-write of the file survived: no reader or writer was beside it.
    expect(Number(await readFile(counterFile, 'utf8'))).toBe(writes)
    const mostReaders = mostAtOnce(records, ['read'])
    expect(mostReaders).toBeGreaterThan(1)
    byToken(records)
    expect(tokenTimeInversions(records)).toEqual([])
    console.log(
      `${kind}: ${records.length} sections (${writes} writes) in ${runMs.toFixed(0)} ms, at most ${mostReaders} readers at once`,
    )
  })
})
