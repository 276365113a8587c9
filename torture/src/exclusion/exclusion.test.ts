import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type Backend, prepareBackend, STORE_KINDS, type StoreKind } from '../backends/stores.js'
import { tally } from '../tally.js'
import { describeSection, exclusionBreaks, overlappingPairs, staleWritesAccepted, tokenTimeInversions } from './intervals.js'
import type { WorkerTask } from './protocol.js'
import { runWorkers, type TaskResult } from './run_workers.js'

const WORKERS = 8
const SECTIONS_PER_WORKER = 25
const EXPIRY_SECTIONS_PER_WORKER = 12
/** The expiry variant's lease; stalls outlive it two to three and a half times. */
const SHORT_TTL = 60
/**
 * Waiters back off exponentially up to this: DynamoDB Local (one JVM sharing two cores with eight
 * pollers) answers fastest when polled least; the other stores barely poll (notifications or quick turns).
 */
const MAX_RETRY_DELAY: Record<StoreKind, number> = { memory: 20, redis: 20, upstash: 20, postgres: 20, mysql: 20, dynamodb: 50 }

describe.each(STORE_KINDS)(`%s: mutual exclusion across ${WORKERS} processes`, (kind) => {
  let backend: Backend
  let scratch: string
  let counterFile: string
  let plain: TaskResult
  let expiring: TaskResult

  beforeAll(async () => {
    backend = await prepareBackend(kind)
    scratch = await mkdtemp(join(tmpdir(), 'verrou-torture-'))
    counterFile = join(scratch, 'counter')
    await writeFile(counterFile, '0')
    const common = { spec: backend.spec, maxRetryDelay: MAX_RETRY_DELAY[kind] }
    const tasks: WorkerTask[] = [
      {
        ...common,
        key: `exclusion:${Math.random().toString(36).slice(2)}`,
        sections: SECTIONS_PER_WORKER,
        ttl: 10_000,
        hold: { min: 0, max: 3 },
        counterFile,
        fenced: false,
      },
      {
        ...common,
        key: `expiry:${Math.random().toString(36).slice(2)}`,
        sections: EXPIRY_SECTIONS_PER_WORKER,
        ttl: SHORT_TTL,
        hold: { min: 0, max: 5 },
        stall: { probability: 0.25, min: SHORT_TTL * 2, max: SHORT_TTL * 3.5 },
        fenced: true,
      },
    ]
    ;[plain, expiring] = (await runWorkers(tasks, WORKERS, 100_000)) as [TaskResult, TaskResult]
    tally('criticalSections', kind, plain.records.length, 'exclusion')
    tally('criticalSections', kind, expiring.records.length, 'expiry')
  })

  afterAll(async () => {
    await backend?.dispose()
    if (scratch) await rm(scratch, { recursive: true, force: true })
  })

  test(`${WORKERS} workers x ${SECTIONS_PER_WORKER} sections: the counter is exact and holder intervals never overlap`, async () => {
    const { records, startupMs, runMs } = plain
    const total = WORKERS * SECTIONS_PER_WORKER
    expect(records).toHaveLength(total)
    expect(Number(await readFile(counterFile, 'utf8'))).toBe(total)
    expect(records.filter((record) => record.release !== 'released')).toEqual([])
    if (kind !== 'memory') expect(new Set(records.map((record) => record.pid)).size).toBe(WORKERS)

    // Ordered by token, each holder starts only after the previous one ended: tokens increase in time.
    expect(exclusionBreaks(records)).toEqual([])
    expect(tokenTimeInversions(records)).toEqual([])
    console.log(`${kind}: ${total} sections, workers up in ${startupMs.toFixed(0)} ms, ran in ${runMs.toFixed(0)} ms`)
  })

  test('short ttl, holds that outlive it: every overlap the expiry allows is exposed by the fencing token', () => {
    const { records, counter, runMs } = expiring
    expect(records).toHaveLength(WORKERS * EXPIRY_SECTIONS_PER_WORKER)

    // The stalls did let leases run out under their holders while others took the lock.
    const overlaps = overlappingPairs(records)
    expect(overlaps.length).toBeGreaterThan(0)
    expect(counter.rejected).toBeGreaterThan(0)

    // Whoever asked after another already held the lock got the higher token, so in every overlap the
    // stale holder (whose lease ran out first) carries the lower one.
    expect(tokenTimeInversions(records)).toEqual([])
    for (const [older, newer] of overlaps) expect(older.token).toBeLessThan(newer.token)
    // The resource refused every write sent after a newer holder had used it...
    expect(staleWritesAccepted(records).map(describeSection)).toEqual([])
    // ...and refused only holders whose lease had indeed ended: their release says "not owned".
    const refused = records.filter((record) => record.read?.accepted === false || record.write?.accepted === false)
    expect(refused.length).toBeGreaterThan(0)
    expect(refused.filter((record) => record.release !== 'not-owned').map(describeSection)).toEqual([])
    // No storage errors, and no update lost among the writes the resource accepted.
    expect(records.filter((record) => record.release === 'storage-error')).toEqual([])
    expect(counter.value).toBe(counter.acceptedWrites)
    console.log(
      `${kind}: ${records.length} sections on a ${SHORT_TTL} ms lease in ${runMs.toFixed(0)} ms: ${overlaps.length} overlapping ` +
        `pairs, ${counter.rejected} stale operations refused by the fenced resource, ${counter.acceptedWrites} writes accepted`,
    )
  })
})
