import { errors, LockFactory, MemoryStore } from '@verrou/core'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import { tally } from '../tally.js'
import { LockModel } from './lock_model.js'

const KEYS = ['alpha', 'beta'] as const
const OWNERS = ['ann', 'bob', 'cyd'] as const
const ttlArbitrary = fc.oneof(fc.integer({ min: 1, max: 50 }), fc.constant(null))

type Command =
  | { op: 'acquire'; key: number; owner: number; ttl: number | null }
  | { op: 'release'; key: number; owner: number; viaSerialized: boolean }
  | { op: 'extend'; key: number; owner: number; ttl: number | null }
  | { op: 'forceRelease'; key: number }
  | { op: 'isLocked'; key: number }
  | { op: 'advance'; ms: number }

const key = fc.integer({ min: 0, max: KEYS.length - 1 })
const owner = fc.integer({ min: 0, max: OWNERS.length - 1 })
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('acquire' as const), key, owner, ttl: ttlArbitrary }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('release' as const), key, owner, viaSerialized: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('extend' as const), key, owner, ttl: ttlArbitrary }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('forceRelease' as const), key }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('isLocked' as const), key }) },
  // Small steps, and steps that land exactly on a lease's end, where off-by-one bugs live.
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      ms: fc.oneof(fc.integer({ min: 0, max: 60 }), fc.constantFrom(1, 10, 50)),
    }),
  },
)

/** Runs `commands` against the memory store (through Lock and LockFactory) and the model side by side. */
async function check(commands: Command[]): Promise<void> {
  const store = new MemoryStore()
  const factory = new LockFactory(store)
  const model = new LockModel()
  for (const [step, cmd] of commands.entries()) {
    const where = `step ${step}: ${JSON.stringify(cmd)}`
    if (cmd.op === 'advance') {
      model.now += cmd.ms
      await vi.advanceTimersByTimeAsync(cmd.ms)
      continue
    }
    const k = KEYS[cmd.key]!
    if (cmd.op === 'forceRelease') {
      model.forceRelease(k)
      await factory.createLock(k).forceRelease()
      continue
    }
    if (cmd.op === 'isLocked') {
      expect(await factory.createLock(k).isLocked(), where).toBe(model.isLocked(k))
      continue
    }
    const o = OWNERS[cmd.owner]!
    if (cmd.op === 'acquire') {
      const lock = factory.createLock(k, cmd.ttl, { owner: o })
      const expected = model.acquire(k, o, cmd.ttl)
      expect(await lock.acquireImmediately(), where).toBe(expected)
      if (expected) {
        const token = lock.fencingToken!
        expect(token, `${where}: token must grow`).toBeGreaterThan(model.lastToken.get(k) ?? 0)
        model.lastToken.set(k, token)
        expect(lock.getRemainingTime(), where).toBe(cmd.ttl)
      }
      continue
    }
    let lock = factory.createLock(k, cmd.op === 'extend' ? cmd.ttl : null, { owner: o })
    if (cmd.op === 'release' && cmd.viaSerialized) lock = factory.restoreLock(lock.serialize())
    const expected = cmd.op === 'release' ? model.release(k, o) : model.extend(k, o, cmd.ttl)
    const outcome = await (cmd.op === 'release' ? lock.release() : lock.extend()).then(
      () => true,
      (error: unknown) => {
        if (error instanceof errors.E_LOCK_NOT_OWNED) return false
        throw error
      },
    )
    expect(outcome, where).toBe(expected)
  }
  // Nothing left behind that the model does not know of.
  for (const k of KEYS) expect(await factory.createLock(k).isLocked()).toBe(model.isLocked(k))
}

describe('memory store against a reference model of lock semantics', () => {
  beforeEach(() => {
    // The store's lease clock (performance.now), Lock's estimates (Date) and expiry timers, all under test control.
    vi.useFakeTimers({ toFake: ['performance', 'Date', 'setTimeout', 'clearTimeout'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  test('fake timers drive the store: a lease ends exactly at its ttl', async () => {
    const factory = new LockFactory(new MemoryStore())
    const lock = factory.createLock('clock-check', 10)
    expect(await lock.acquireImmediately()).toBe(true)
    await vi.advanceTimersByTimeAsync(9)
    expect(await lock.isLocked()).toBe(true)
    await vi.advanceTimersByTimeAsync(1)
    expect(await lock.isLocked()).toBe(false)
  })

  test('random interleavings of acquire / release / extend / expire / force release across owners match the model', async () => {
    let commandsRun = 0
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 80, size: 'large' }), async (commands) => {
        commandsRun += commands.length
        await check(commands)
      }),
      { numRuns: 400 },
    )
    tally('inputsTried', 'memory', commandsRun, 'model-based commands')
  })
})
