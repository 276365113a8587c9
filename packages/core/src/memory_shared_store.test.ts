import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { MemoryStore } from './memory_store.js'
import type { SharedLockStore, SharedMode } from './store.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const READ: SharedMode = { exclusive: false, limit: null }
const WRITE: SharedMode = { exclusive: true, limit: null }
const permits = (limit: number): SharedMode => ({ exclusive: false, limit })
const WAIT = { lease: 2_000 }

function setup(): { store: MemoryStore; shared: SharedLockStore } {
  const store = new MemoryStore()
  return { store, shared: store.shared as SharedLockStore }
}

async function granted(shared: SharedLockStore, key: string, owner: string, mode: SharedMode, ttl: number | null = 10_000) {
  const result = await shared.acquire(key, owner, mode, ttl)
  return result.acquired
}

describe('memory store: semaphores and read-write locks', () => {
  test('a semaphore grants at most limit permits; a released permit is free again', async () => {
    const { shared } = setup()
    expect(await granted(shared, 's', 'a', permits(2))).toBe(true)
    expect(await granted(shared, 's', 'b', permits(2))).toBe(true)
    expect(await granted(shared, 's', 'c', permits(2))).toBe(false)
    expect(await shared.isLocked('s', permits(2))).toBe(true)
    expect(await shared.isLocked('s', permits(3))).toBe(false)
    expect(await shared.release('s', 'a', permits(2))).toBe(true)
    expect(await granted(shared, 's', 'c', permits(2))).toBe(true)
  })

  test('each request brings its own limit: a larger limit is granted beside holders a smaller one would refuse', async () => {
    const { shared } = setup()
    expect(await granted(shared, 's', 'a', permits(1))).toBe(true)
    expect(await granted(shared, 's', 'b', permits(1))).toBe(false)
    expect(await granted(shared, 's', 'b', permits(3))).toBe(true)
    expect(await granted(shared, 's', 'c', permits(2))).toBe(false)
    expect(await granted(shared, 's', 'c', permits(3))).toBe(true)
  })

  test('readers share, a writer excludes readers and writers', async () => {
    const { shared } = setup()
    expect(await granted(shared, 'd', 'r1', READ)).toBe(true)
    expect(await granted(shared, 'd', 'r2', READ)).toBe(true)
    expect(await granted(shared, 'd', 'w', WRITE)).toBe(false)
    expect(await shared.isLocked('d', READ)).toBe(false)
    expect(await shared.isLocked('d', WRITE)).toBe(true)
    await shared.release('d', 'r1', READ)
    await shared.release('d', 'r2', READ)
    expect(await granted(shared, 'd', 'w', WRITE)).toBe(true)
    expect(await granted(shared, 'd', 'r3', READ)).toBe(false)
    expect(await granted(shared, 'd', 'w2', WRITE)).toBe(false)
    expect(await shared.isLocked('d', READ)).toBe(true)
  })

  test('an owner that holds is not granted again, in any mode', async () => {
    const { shared } = setup()
    expect(await granted(shared, 'd', 'a', READ)).toBe(true)
    expect(await granted(shared, 'd', 'a', READ)).toBe(false)
    expect(await granted(shared, 'd', 'a', WRITE)).toBe(false)
  })

  test('a waiting writer blocks later readers; readers at the head are announced together when it is done', async () => {
    const { shared } = setup()
    const announced: (string | undefined)[] = []
    await shared.subscribeToReleases?.('d', (next) => announced.push(next))
    expect(await granted(shared, 'd', 'r1', READ)).toBe(true)
    expect(await shared.acquire('d', 'w', WRITE, 10_000, WAIT)).toEqual({
      acquired: false,
      position: 0,
      expiresIn: expect.any(Number),
    })
    // A reader coming after the waiting writer waits behind it, though only readers hold.
    expect(await shared.acquire('d', 'r2', READ, 10_000, WAIT)).toMatchObject({ acquired: false, position: 1 })
    expect(await shared.acquire('d', 'r3', READ, 10_000, WAIT)).toMatchObject({ acquired: false, position: 2 })
    expect(await granted(shared, 'd', 'r4', READ)).toBe(false)
    await shared.release('d', 'r1', READ)
    expect(announced).toEqual(['w'])
    expect(await granted(shared, 'd', 'r2', READ)).toBe(false)
    expect(await shared.acquire('d', 'w', WRITE, 10_000, WAIT)).toMatchObject({ acquired: true })
    announced.length = 0
    await shared.release('d', 'w', WRITE)
    expect(announced).toEqual(['r2', 'r3'])
    expect(await granted(shared, 'd', 'r3', READ)).toBe(true)
    expect(await granted(shared, 'd', 'r2', READ)).toBe(true)
  })

  test('announcements stop at the limit: one permit freed names one waiter', async () => {
    const { shared } = setup()
    const announced: (string | undefined)[] = []
    await shared.subscribeToReleases?.('s', (next) => announced.push(next))
    await granted(shared, 's', 'a', permits(2))
    await granted(shared, 's', 'b', permits(2))
    await shared.acquire('s', 'c', permits(2), 10_000, WAIT)
    await shared.acquire('s', 'd', permits(2), 10_000, WAIT)
    expect(await granted(shared, 's', 'e', permits(5))).toBe(true)
    await shared.release('s', 'a', permits(2))
    await shared.release('s', 'e', permits(5))
    expect(announced).toEqual(['c'])
  })

  test('each holder has its own lease; a holder whose lease ended is freed and announced without a call', async () => {
    const { shared } = setup()
    const announced: (string | undefined)[] = []
    await shared.subscribeToReleases?.('s', (next) => announced.push(next))
    await granted(shared, 's', 'short', permits(2), 100)
    await granted(shared, 's', 'long', permits(2), 10_000)
    await shared.acquire('s', 'waiter', permits(2), 10_000, WAIT)
    await sleep(60)
    expect(announced).toEqual([])
    await sleep(100)
    expect(announced).toEqual(['waiter'])
    expect(await shared.release('s', 'short', permits(2))).toBe(false)
    expect(await shared.extend('s', 'short', permits(2), 1_000)).toBe(false)
    expect(await shared.extend('s', 'long', permits(2), 1_000)).toBe(true)
    expect(await granted(shared, 's', 'waiter', permits(2))).toBe(true)
  })

  test('release and extend need the owner and the same exclusivity', async () => {
    const { shared } = setup()
    await granted(shared, 'd', 'r', READ)
    expect(await shared.release('d', 'other', READ)).toBe(false)
    expect(await shared.release('d', 'r', WRITE)).toBe(false)
    expect(await shared.extend('d', 'r', WRITE, 1_000)).toBe(false)
    // A permit is a shared holding: the exclusivity matches whatever the limit.
    expect(await shared.extend('d', 'r', permits(4), 1_000)).toBe(true)
    expect(await shared.release('d', 'r', READ)).toBe(true)
    expect(await shared.release('d', 'r', READ)).toBe(false)
  })

  test('forceRelease ends the writer, or every shared holder, per mode', async () => {
    const { shared } = setup()
    await granted(shared, 'd', 'r1', READ)
    await granted(shared, 'd', 'r2', permits(5))
    await shared.forceRelease('d', WRITE)
    expect(await shared.isLocked('d', WRITE)).toBe(true)
    await shared.forceRelease('d', READ)
    expect(await shared.isLocked('d', WRITE)).toBe(false)
    await granted(shared, 'd', 'w', WRITE)
    await shared.forceRelease('d', READ)
    expect(await shared.isLocked('d', WRITE)).toBe(true)
    await shared.forceRelease('d', WRITE)
    expect(await shared.isLocked('d', WRITE)).toBe(false)
  })

  test('fencing tokens rise across permits, reads, writes and mutexes', async () => {
    const { store, shared } = setup()
    const tokens: number[] = []
    for (const [owner, mode] of [
      ['a', permits(2)],
      ['b', READ],
    ] as const) {
      const result = await shared.acquire('k', owner, mode, 10_000)
      if (result.acquired) tokens.push(result.fencingToken)
    }
    await shared.forceRelease('k', READ)
    const write = await shared.acquire('k', 'w', WRITE, 10_000)
    if (write.acquired) tokens.push(write.fencingToken)
    const mutex = await store.acquire('k', 'm', 10_000)
    if (mutex.acquired) tokens.push(mutex.fencingToken)
    expect(tokens).toHaveLength(4)
    expect([...tokens].sort((x, y) => x - y)).toEqual(tokens)
    expect(new Set(tokens).size).toBe(4)
  })

  test('shared keys live apart from mutex keys', async () => {
    const { store, shared } = setup()
    expect(await store.acquire('k', 'm', 10_000)).toMatchObject({ acquired: true })
    expect(await granted(shared, 'k', 'w', WRITE)).toBe(true)
    expect(await store.isLocked('k')).toBe(true)
  })

  test('a place that leaves or dies no longer holds up those behind it', async () => {
    const { shared } = setup()
    await granted(shared, 'd', 'r', READ)
    await shared.acquire('d', 'w', WRITE, 10_000, { lease: 100 })
    expect(await granted(shared, 'd', 'r2', READ)).toBe(false)
    await sleep(130)
    expect(await granted(shared, 'd', 'r2', READ)).toBe(true)
    await shared.acquire('d', 'w', WRITE, 10_000, WAIT)
    expect(await granted(shared, 'd', 'r3', READ)).toBe(false)
    await shared.leaveQueue('d', 'w')
    await shared.leaveQueue('d', 'w')
    expect(await granted(shared, 'd', 'r3', READ)).toBe(true)
  })

  test('nothing is kept for a key once it has no holder and no live place', async () => {
    const { store, shared } = setup()
    for (let i = 0; i < 200; i++) await shared.acquire(`k${i}`, 'a', permits(2), 50)
    await shared.acquire('q', 'a', WRITE, 10_000)
    await shared.acquire('q', 'b', READ, 10_000, { lease: 50 })
    await shared.release('q', 'a', WRITE)
    expect(store.footprint).toBeGreaterThan(0)
    await sleep(120)
    expect(store.footprint).toBe(0)
    expect(await shared.isLocked('q', WRITE)).toBe(false)
    expect(store.footprint).toBe(0)
  })
})

/** The grant rule of `SharedLockStore`, restated on plain arrays: what the store must decide. */
interface ModelHolder {
  owner: string
  exclusive: boolean
}
interface ModelPlace extends ModelHolder {
  limit: number | null
}

function modelAdmits(holders: ModelHolder[], places: ModelPlace[], owner: string, mode: SharedMode): boolean {
  if (holders.some((holder) => holder.owner === owner)) return false
  const index = places.findIndex((place) => place.owner === owner)
  const ahead = index === -1 ? places : places.slice(0, index)
  if (mode.exclusive) return holders.length === 0 && ahead.length === 0
  if (holders.some((holder) => holder.exclusive) || ahead.some((place) => place.exclusive)) return false
  return mode.limit === null || holders.length + ahead.length < mode.limit
}

const MODES: SharedMode[] = [WRITE, READ, permits(1), permits(2), permits(3)]
const operation = fc.oneof(
  fc.record({ op: fc.constant('acquire' as const), owner: fc.nat(4), mode: fc.nat(4), wait: fc.boolean() }),
  fc.record({ op: fc.constant('release' as const), owner: fc.nat(4), mode: fc.nat(4) }),
  fc.record({ op: fc.constant('leave' as const), owner: fc.nat(4) }),
  fc.record({ op: fc.constant('force' as const), mode: fc.nat(4) }),
)

describe('memory store: the grant rule, against a model', () => {
  test('every decision, position and release matches the rule; tokens rise; isLocked agrees', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { maxLength: 60 }), async (operations) => {
        const { shared } = setup()
        let holders: ModelHolder[] = []
        let places: ModelPlace[] = []
        let lastToken = 0
        for (const step of operations) {
          if (step.op === 'acquire') {
            const owner = `o${step.owner}`
            const mode = MODES[step.mode]!
            const expected = modelAdmits(holders, places, owner, mode)
            const result = await shared.acquire('k', owner, mode, null, step.wait ? { lease: 1e9 } : undefined)
            expect(result.acquired).toBe(expected)
            if (result.acquired) {
              expect(result.fencingToken).toBeGreaterThan(lastToken)
              lastToken = result.fencingToken
              holders.push({ owner, exclusive: mode.exclusive })
              places = places.filter((place) => place.owner !== owner)
            } else if (step.wait) {
              let index = places.findIndex((place) => place.owner === owner)
              if (index === -1) index = places.push({ owner, exclusive: mode.exclusive, limit: mode.limit }) - 1
              else places[index] = { owner, exclusive: mode.exclusive, limit: mode.limit }
              expect(result.position).toBe(index)
            }
          } else if (step.op === 'release') {
            const owner = `o${step.owner}`
            const mode = MODES[step.mode]!
            const held = holders.some((holder) => holder.owner === owner && holder.exclusive === mode.exclusive)
            expect(await shared.release('k', owner, mode)).toBe(held)
            if (held) holders = holders.filter((holder) => holder.owner !== owner)
          } else if (step.op === 'leave') {
            await shared.leaveQueue('k', `o${step.owner}`)
            places = places.filter((place) => place.owner !== `o${step.owner}`)
          } else {
            const mode = MODES[step.mode]!
            await shared.forceRelease('k', mode)
            holders = holders.filter((holder) => holder.exclusive !== mode.exclusive)
          }
          expect(await shared.isLocked('k', WRITE)).toBe(holders.length > 0)
          const writer = holders.some((holder) => holder.exclusive)
          expect(await shared.isLocked('k', permits(2))).toBe(writer || holders.length >= 2)
        }
      }),
      { numRuns: 300 },
    )
  })
})
