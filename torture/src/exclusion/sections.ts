import { readFile, writeFile } from 'node:fs/promises'
import { errors, type Lock, LockFactory } from '@verrou/core'
import { openStore } from '../backends/stores.js'
import type { FenceReply, SectionMode, SectionRecord, WorkerTask } from './protocol.js'

/**
 * Milliseconds on the kernel's monotonic clock (CLOCK_MONOTONIC): one clock for every process on the machine.
 * Not performance.timeOrigin + performance.now(): timeOrigin is sampled from the wall clock at process start,
 * and on a loaded machine that sample can be off by several ms per process, which once showed up in CI as
 * holders "overlapping" that the exact counter proved never did.
 */
export const now = () => Number(process.hrtime.bigint()) / 1e6
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const between = (min: number, max: number) => min + Math.random() * (max - min)

/** How a worker talks to the test: over IPC in a child process, directly for the in-process memory store. */
export interface WorkerLink {
  ready(): void
  started: Promise<void>
  /** True once the test said to start no new section. */
  stopped(): boolean
  fence(op: 'read' | 'write', token: number, value?: number): Promise<FenceReply>
}

/** A new lock of the task's kind; a read-write task picks read or write at random for each section. */
function createSectionLock(factory: LockFactory, task: WorkerTask): { lock: Lock; mode: SectionMode } {
  const shared = task.shared
  if (shared === undefined) return { lock: factory.createLock(task.key, task.ttl), mode: 'mutex' }
  if (shared.kind === 'semaphore') {
    return { lock: factory.createSemaphore(task.key, { limit: shared.limit, ttl: task.ttl }), mode: 'permit' }
  }
  const readWrite = factory.createReadWriteLock(task.key, task.ttl)
  return Math.random() < shared.writeProbability
    ? { lock: readWrite.write, mode: 'write' }
    : { lock: readWrite.read, mode: 'read' }
}

/** Runs one worker's critical sections on the task's key and returns what it saw. */
export async function runSections(task: WorkerTask, link: WorkerLink, pid: number): Promise<SectionRecord[]> {
  const { store, close } = await openStore(task.spec)
  try {
    const factory = new LockFactory(store, {
      retry: { delay: 1, backoff: 'exponential', maxDelay: task.maxRetryDelay },
      operationTimeout: 10_000,
    })
    // Warm the connection (and create the table) before the start line, so every worker starts together.
    await createSectionLock(factory, task).lock.isLocked()
    link.ready()
    await link.started
    const records: SectionRecord[] = []
    const startedAt = now()
    const timeLeft = () => !link.stopped() && (task.runForMs === undefined || now() - startedAt < task.runForMs)
    for (let section = 0; section < task.sections && timeLeft(); section++) {
      const { lock, mode } = createSectionLock(factory, task)
      const requestedAt = now()
      const acquired = await lock.acquire({ retry: { timeout: 60_000 } })
      const acquiredAt = now()
      if (!acquired) throw new Error('acquire gave up after 60 s')
      const token = lock.fencingToken!
      const stalled = task.stall !== undefined && Math.random() < task.stall.probability
      const hold = stalled ? between(task.stall!.min, task.stall!.max) : between(task.hold.min, task.hold.max)
      const record: SectionRecord = { pid, mode, token, requestedAt, acquiredAt, endedAt: 0, stalled, release: 'released' }
      if (task.fenced) {
        // A fenced resource: it accepts an operation only with a token at least the highest it has seen.
        const read = await link.fence('read', token)
        record.read = { accepted: read.accepted, at: now() }
        await sleep(hold)
        if (read.accepted) {
          const sentAt = now()
          const write = await link.fence('write', token, read.value + 1)
          record.write = { accepted: write.accepted, sentAt }
        }
      } else if (mode === 'read' || mode === 'permit') {
        // Shared sections only read (or, for permits, just hold): writes to the file are the writers' alone.
        if (task.counterFile !== undefined) await readFile(task.counterFile, 'utf8')
        await sleep(hold)
      } else {
        // An unprotected read-modify-write of a file: only the lock keeps it whole.
        const value = Number(await readFile(task.counterFile!, 'utf8'))
        await sleep(hold)
        await writeFile(task.counterFile!, String(value + 1))
      }
      record.endedAt = now()
      try {
        await lock.release()
      } catch (error) {
        if (error instanceof errors.E_LOCK_NOT_OWNED) record.release = 'not-owned'
        else if (error instanceof errors.E_LOCK_STORAGE_ERROR) record.release = 'storage-error'
        else throw error
      }
      records.push(record)
    }
    return records
  } finally {
    await close()
  }
}
