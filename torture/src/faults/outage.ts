import { errors, type LockFactory } from '@verrou/core'
import { expect } from 'vitest'
import { tally } from '../tally.js'

/** One way of harming a backend. */
export interface OutagePlan {
  /** What happens, for messages and counts: "SIGSTOP", "killed mid-operation", ... */
  name: string
  /** Makes the backend stop answering; runs before the operations are sent. */
  inflict(): Promise<void>
  /** Runs once the operations are in flight: kill the server or the store's sessions under them. */
  strike?(): Promise<void>
  /** Brings the backend back. */
  heal(): Promise<void>
}

export interface OutageOptions {
  /** The store's name, for the counts. */
  store: string
  /** Each operation must fail within this many ms of being sent (the factory's operationTimeout plus slack). */
  failWithin: number
  /** With a strike: each operation must fail within this many ms of the strike (well under operationTimeout). */
  failAfterStrikeWithin?: number
  /** How long the same store may take to work again once healed. */
  recoverWithin: number
}

/** Operations sent into each outage on a store with shared locks: 7 on mutexes, 6 on permits and read/write locks. */
export const OUTAGE_OPERATIONS = 13

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const unique = (label: string) => `${label}:${Math.random().toString(36).slice(2, 10)}`

/**
 * Sends every kind of lock operation into a harmed backend and checks the product rule for failures: each
 * one rejects with E_LOCK_STORAGE_ERROR within a bound (never a hang, never "not acquired" or "not
 * owned"), and once the backend is back the very same factory and store work again, with every lock held
 * before the outage still held by its owner and its fencing counter intact.
 */
export async function runOutage(factory: LockFactory, plan: OutagePlan, options: OutageOptions): Promise<void> {
  const holder = factory.createLock(unique('held'), '60s')
  const releaser = factory.createLock(unique('releasing'), '60s')
  const rival = factory.createLock(holder.key, '60s')
  const waiter = factory.createLock(holder.key, '60s')
  const newcomer = factory.createLock(unique('free'), '60s')
  const bystander = factory.createLock(unique('never-held'), '60s')
  expect(await holder.acquireImmediately()).toBe(true)
  expect(await releaser.acquireImmediately()).toBe(true)
  const tokenBefore = holder.fencingToken!
  const shared = factory.store.shared === undefined ? undefined : await holdSharedLocks(factory)

  await plan.inflict()
  const operations: Array<[string, () => Promise<unknown>]> = [
    ...(shared?.operations ?? []),
    ['acquire a free key', () => newcomer.acquireImmediately()],
    ['acquire a held key', () => rival.acquireImmediately()],
    ['acquire with retries', () => waiter.acquire({ retry: { timeout: 60_000, delay: 50 } })],
    ['extend', () => holder.extend()],
    ['release', () => releaser.release()],
    ['isLocked', () => holder.isLocked()],
    ['forceRelease', () => bystander.forceRelease()],
  ]
  // The fault tests that count operations waiting inside the server expect this many.
  if (shared !== undefined) expect(operations).toHaveLength(OUTAGE_OPERATIONS)
  const sentAt = performance.now()
  const outcomes = operations.map(([name, run]) =>
    run().then(
      (value) => ({ name, value, error: undefined as unknown, at: performance.now() }),
      (error: unknown) => ({ name, value: undefined, error, at: performance.now() }),
    ),
  )
  let struckAt: number | undefined
  if (plan.strike) {
    await plan.strike()
    struckAt = performance.now()
  }
  const settled = await Promise.all(outcomes)
  tally('faultsInjected', options.store, settled.length, plan.name)
  for (const outcome of settled) {
    const context = `${plan.name}: ${outcome.name}`
    if (!(outcome.error instanceof errors.E_LOCK_STORAGE_ERROR)) {
      expect.fail(`${context} should fail with E_LOCK_STORAGE_ERROR, got ${describe(outcome.error, outcome.value)}`)
    }
    expect(outcome.at - sentAt, `${context}: ms until it failed`).toBeLessThan(options.failWithin)
    if (struckAt !== undefined && options.failAfterStrikeWithin !== undefined) {
      expect(outcome.at - struckAt, `${context}: ms from the strike until it failed`).toBeLessThan(options.failAfterStrikeWithin)
    }
  }

  await plan.heal()
  // The same objects work again. A lease held before the outage is still its owner's: it is extended, never
  // reported lost. Failures on the way back may only be storage errors.
  await eventually(() => holder.extend(), options.recoverWithin, `${plan.name}: extend after recovery`)
  expect(await rival.acquireImmediately()).toBe(false)
  expect(await holder.isLocked()).toBe(true)
  await holder.release()
  // The waiter gave up during the outage, but its attempt may still have reached the server afterwards and
  // taken a place in the queue, which its leaving (also sent into the outage) may not have removed. Such a
  // place dies with its lease (2 s); until then nobody jumps it, so the rival waits its turn.
  expect(await rival.acquire({ retry: { timeout: 5_000, delay: 50 } })).toBe(true)
  expect(rival.fencingToken!).toBeGreaterThan(tokenBefore)
  await rival.release()

  // The release sent into the outage may or may not have reached the backend; either way the key ends free.
  await releaser.release().catch((error: unknown) => {
    if (!(error instanceof errors.E_LOCK_NOT_OWNED)) throw error
  })
  expect(await releaser.isLocked()).toBe(false)
  // An acquire that was granted after its call gave up is handed back when its late reply comes; if no reply
  // ever comes, the same Lock releases it before its next acquire. Either way the newcomer is not locked out
  // by its own grant for the 60 s of its lease.
  await eventually(
    async () => {
      if (!(await newcomer.acquireImmediately())) throw new Error('not acquired')
    },
    5_000,
    `${plan.name}: the newcomer acquires the free key again`,
  )
  await newcomer.release()
  expect(await bystander.isLocked()).toBe(false)
  await shared?.checkAfterRecovery(plan.name, options.recoverWithin)
}

/**
 * Semaphore permits and read-write locks held before an outage: their operations sent into it must fail as
 * storage errors too, and afterwards every holding is still its owner's, limits and writer exclusion intact.
 */
async function holdSharedLocks(factory: LockFactory) {
  const semaphoreKey = unique('permits')
  const permitHolder = factory.createSemaphore(semaphoreKey, { limit: 2, ttl: '60s' })
  const permitReleaser = factory.createSemaphore(semaphoreKey, { limit: 2, ttl: '60s' })
  const permitRival = factory.createSemaphore(semaphoreKey, { limit: 2, ttl: '60s' })
  const document = factory.createReadWriteLock(unique('document'), '60s')
  const writer = factory.createReadWriteLock(document.key, '60s')
  expect(await permitHolder.acquireImmediately()).toBe(true)
  expect(await permitReleaser.acquireImmediately()).toBe(true)
  expect(await document.read.acquireImmediately()).toBe(true)
  const tokenBefore = document.read.fencingToken!

  const operations: Array<[string, () => Promise<unknown>]> = [
    ['take a permit', () => permitRival.acquireImmediately()],
    ['extend a permit', () => permitHolder.extend()],
    ['release a permit', () => permitReleaser.release()],
    ['are all permits taken', () => permitHolder.isLocked()],
    ['extend a read lock', () => document.read.extend()],
    ['take a write lock', () => writer.write.acquireImmediately()],
  ]
  return {
    operations,
    async checkAfterRecovery(name: string, recoverWithin: number) {
      await eventually(() => permitHolder.extend(), recoverWithin, `${name}: extend a permit after recovery`)
      await document.read.extend()
      // The release sent into the outage may or may not have landed; then the permit is released now.
      await permitReleaser.release().catch((error: unknown) => {
        if (!(error instanceof errors.E_LOCK_NOT_OWNED)) throw error
      })
      // One permit of two is held: one more fits, then the semaphore is full. The rival's own attempt sent
      // into the outage may have been granted with no answer; it releases that first.
      expect(await permitRival.acquire({ retry: { timeout: 5_000, delay: 50 } })).toBe(true)
      expect(await permitHolder.isLocked()).toBe(true)
      // The reader still holds: no writer beside it until it lets go.
      expect(await writer.write.acquireImmediately()).toBe(false)
      await document.read.release()
      expect(await writer.write.acquire({ retry: { timeout: 5_000, delay: 50 } })).toBe(true)
      expect(writer.write.fencingToken!).toBeGreaterThan(tokenBefore)
      await writer.write.release()
      await permitRival.release()
      await permitHolder.release()
      expect(await permitHolder.isLocked()).toBe(false)
    },
  }
}

/**
 * Retries `attempt` until it succeeds. Storage errors are the only acceptable failures on the way; with
 * `anyError` (polling a condition), any error just means "not yet".
 */
export async function eventually(
  attempt: () => Promise<unknown>,
  withinMs: number,
  what: string,
  anyError = false,
): Promise<number> {
  const started = performance.now()
  for (;;) {
    try {
      await attempt()
      return performance.now() - started
    } catch (error) {
      if (!anyError && !(error instanceof errors.E_LOCK_STORAGE_ERROR)) {
        expect.fail(`${what}: only storage errors may occur while the backend comes back, got ${describe(error)}`)
      }
      if (performance.now() - started > withinMs) expect.fail(`${what}: still failing after ${withinMs} ms: ${describe(error)}`)
      await sleep(100)
    }
  }
}

function describe(error: unknown, value?: unknown): string {
  if (error === undefined) return `the value ${JSON.stringify(value)}`
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}

/**
 * The store's connections are killed from the server side while idle. The next operations may notice
 * and fail (with a storage error only) or go through on a fresh connection; they never give a wrong
 * answer, and the store works again on its own within `recoverWithin`.
 */
export async function runIdleKill(
  factory: LockFactory,
  killAll: () => Promise<number>,
  options: { store: string; recoverWithin: number },
): Promise<void> {
  const holder = factory.createLock(unique('held'), '60s')
  const rival = factory.createLock(holder.key, '60s')
  expect(await holder.acquireImmediately()).toBe(true)
  const killed = await killAll()
  expect(killed).toBeGreaterThan(0)
  tally('faultsInjected', options.store, killed, 'idle connections killed')
  const probes: Array<[string, () => Promise<unknown>, unknown]> = [
    ['acquire a held key', () => rival.acquireImmediately(), false],
    ['isLocked', () => holder.isLocked(), true],
    ['extend', () => holder.extend(), undefined],
  ]
  for (const [name, run, expected] of probes) {
    const outcome = await run().then(
      (value) => ({ value, error: undefined as unknown }),
      (error: unknown) => ({ value: undefined, error }),
    )
    if (outcome.error === undefined) expect(outcome.value, name).toBe(expected)
    else if (!(outcome.error instanceof errors.E_LOCK_STORAGE_ERROR)) expect.fail(`${name}: ${describe(outcome.error)}`)
  }
  await eventually(() => holder.extend(), options.recoverWithin, 'extend after the connections were killed')
  await holder.release()
  // The waiter gave up during the outage, but its attempt may still have reached the server afterwards and
  // taken a place in the queue, which its leaving (also sent into the outage) may not have removed. Such a
  // place dies with its lease (2 s); until then nobody jumps it, so the rival waits its turn.
  expect(await rival.acquire({ retry: { timeout: 5_000, delay: 50 } })).toBe(true)
  expect(rival.fencingToken!).toBeGreaterThan(holder.fencingToken!)
  await rival.release()
}
