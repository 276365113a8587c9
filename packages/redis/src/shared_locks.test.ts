import { errors, type SharedLockStore, type SharedMode } from '@verrou/core'
import { lockKeys, READER_LINGER_MS, sharedLockKeys } from '@verrou/redis-scripts'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { connect, uniqueKey } from '../test/connections.js'
import { RedisStore } from './store.js'

/**
 * The shared-lock scripts against the real Redis, at the store level: several stores on their own
 * connections stand for several processes. The conformance suite covers the contract through `Lock`;
 * these pin down the scripts' edges (expiry, stale owners, the queue, announcements, memory, key types).
 */
const prefix = 'verrou-test:'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const wait = { lease: 10_000 }
const write: SharedMode = { exclusive: true, limit: null }
const read: SharedMode = { exclusive: false, limit: null }
const permits = (limit: number): SharedMode => ({ exclusive: false, limit })

let admin: Redis
let connections: Redis[] = []
let stores: RedisStore[] = []

beforeAll(() => {
  admin = connect()
  connections = Array.from({ length: 4 }, () => connect())
  stores = connections.map((connection) => new RedisStore({ connection, prefix }))
})

afterAll(async () => {
  for (const store of stores) await store.close()
  await Promise.all([admin.quit(), ...connections.map((connection) => connection.quit())])
})

function shared(index = 0): SharedLockStore {
  return stores[index]!.shared
}

async function grant(store: SharedLockStore, key: string, owner: string, mode: SharedMode, ttl: number | null = 10_000) {
  const result = await store.acquire(key, owner, mode, ttl, wait)
  if (!result.acquired) throw new Error(`expected ${owner} to acquire, got ${JSON.stringify(result)}`)
  return result.fencingToken
}

/**
 * Collects the owners announced on `key`. `settle()` publishes a marker on the same channel after the
 * operations under test and waits for it: messages on one channel arrive in order, so every announcement
 * made before is in by then.
 */
async function listen(key: string) {
  const heard: string[] = []
  let marker: (() => void) | undefined
  const unsubscribe = await shared(3).subscribeToReleases!(key, (next) => {
    if (next === '<marker>') marker?.()
    else heard.push(next ?? '<nobody>')
  })
  return {
    async settle(): Promise<string[]> {
      const seen = new Promise<void>((resolve) => {
        marker = resolve
      })
      await admin.publish(sharedLockKeys(prefix, key).channel, '<marker>')
      await seen
      return heard.splice(0)
    },
    unsubscribe,
  }
}

describe('holders and leases', () => {
  test('a permit whose lease ended does not count: its slot is free then, not sooner', async () => {
    const key = uniqueKey('shared-expired')
    await grant(shared(0), key, 'short', permits(2), 300)
    await grant(shared(1), key, 'long', permits(2))
    expect(await shared(2).acquire(key, 'c', permits(2), 10_000)).toMatchObject({ acquired: false })
    expect(await shared(2).isLocked(key, permits(2))).toBe(true)
    await sleep(400)
    expect(await shared(2).isLocked(key, permits(2))).toBe(false)
    expect(await shared(0).extend(key, 'short', permits(2), 10_000)).toBe(false)
    expect(await shared(0).release(key, 'short', permits(2))).toBe(false)
    expect((await shared(2).acquire(key, 'c', permits(2), 10_000)).acquired).toBe(true)
    await shared(0).forceRelease(key, read)
  })

  test('a stale owner cannot release or extend once its slot went to someone else, in either mode', async () => {
    const key = uniqueKey('shared-stale')
    await grant(shared(0), key, 'w1', write, 100)
    await sleep(200)
    await grant(shared(1), key, 'w2', write)
    expect(await shared(0).release(key, 'w1', write)).toBe(false)
    expect(await shared(0).extend(key, 'w1', write, 10_000)).toBe(false)
    expect(await shared(1).isLocked(key, read)).toBe(true)
    expect(await shared(1).release(key, 'w2', write)).toBe(true)

    await grant(shared(0), key, 'r1', read, 100)
    await sleep(200)
    await grant(shared(1), key, 'w3', write)
    expect(await shared(0).release(key, 'r1', read)).toBe(false)
    expect(await shared(0).extend(key, 'r1', read, 10_000)).toBe(false)
    // Exclusivity must match: a writer cannot end itself as a reader, nor a reader as a writer.
    expect(await shared(1).release(key, 'w3', read)).toBe(false)
    expect(await shared(1).release(key, 'w3', write)).toBe(true)
    await grant(shared(0), key, 'r2', read)
    expect(await shared(0).release(key, 'r2', write)).toBe(false)
    expect(await shared(0).release(key, 'r2', read)).toBe(true)
  })

  test('not re-entrant: a holder is refused in either mode; extend keeps the lease on the server clock', async () => {
    const key = uniqueKey('shared-reentrant')
    await grant(shared(0), key, 'r', read, 1_000)
    expect((await shared(0).acquire(key, 'r', read, 10_000)).acquired).toBe(false)
    expect((await shared(0).acquire(key, 'r', write, 10_000)).acquired).toBe(false)
    expect(await shared(0).extend(key, 'r', read, 60_000)).toBe(true)
    const { readers } = sharedLockKeys(prefix, key)
    expect(await admin.pttl(readers)).toBeGreaterThan(50_000)
    expect(await shared(0).extend(key, 'r', read, null)).toBe(true)
    expect(await admin.pttl(readers)).toBe(-1)
    expect(await shared(0).release(key, 'r', read)).toBe(true)
    expect(await admin.exists(readers)).toBe(0)
  })

  test('a lease of the largest safe ttl, in either mode: held, refused with what is left, released', async () => {
    const key = uniqueKey('shared-huge-ttl')
    for (const mode of [read, write]) {
      await grant(shared(0), key, 'h', mode, Number.MAX_SAFE_INTEGER)
      const refused = await shared(1).acquire(key, 'o', write, 10_000, wait)
      expect(refused.acquired).toBe(false)
      expect(!refused.acquired && refused.expiresIn).toBeGreaterThan(Number.MAX_SAFE_INTEGER / 2)
      expect(await shared(0).extend(key, 'h', mode, Number.MAX_SAFE_INTEGER)).toBe(true)
      expect(await shared(0).release(key, 'h', mode)).toBe(true)
      await shared(1).leaveQueue(key, 'o')
    }
  })

  test('at most limit holders among 20 concurrent acquirers, across rounds; every token distinct and rising per holder', async () => {
    const key = uniqueKey('shared-twenty')
    const limit = 3
    const extra = Array.from({ length: 16 }, () => connect())
    const many = [...stores, ...extra.map((connection) => new RedisStore({ connection, prefix }))]
    try {
      let holding = 0
      let most = 0
      const tokens: number[] = []
      await Promise.all(
        many.map(async (store, i) => {
          for (let round = 0; round < 3; round++) {
            for (;;) {
              const result = await store.shared.acquire(key, `o${i}`, permits(limit), 5_000, { lease: 2_000 })
              if (result.acquired) {
                tokens.push(result.fencingToken)
                break
              }
              await sleep(5)
            }
            holding++
            most = Math.max(most, holding)
            await sleep(3)
            holding--
            expect(await store.shared.release(key, `o${i}`, permits(limit))).toBe(true)
          }
        }),
      )
      expect(most).toBe(limit)
      expect(new Set(tokens).size).toBe(tokens.length)
      expect(await admin.exists(...Object.values(sharedLockKeys(prefix, key)).slice(0, 2))).toBe(0)
    } finally {
      await Promise.all(extra.map((connection) => connection.quit()))
    }
  })

  test('limits are per request: a lower limit is refused where a higher one is granted', async () => {
    const key = uniqueKey('shared-limits')
    await grant(shared(0), key, 'a', permits(3))
    expect((await shared(1).acquire(key, 'b', permits(1), 10_000)).acquired).toBe(false)
    expect(await shared(1).isLocked(key, permits(1))).toBe(true)
    expect(await shared(1).isLocked(key, permits(3))).toBe(false)
    await grant(shared(1), key, 'b', permits(3))
    await shared(0).forceRelease(key, read)
  })

  test('force release: shared ends every reader and leaves a writer; exclusive ends the writer only', async () => {
    const key = uniqueKey('shared-force')
    await grant(shared(0), key, 'r1', read)
    await grant(shared(1), key, 'r2', read)
    await shared(2).forceRelease(key, write)
    expect(await shared(2).isLocked(key, write)).toBe(true)
    await shared(2).forceRelease(key, read)
    expect(await shared(2).isLocked(key, write)).toBe(false)
    expect(await shared(0).release(key, 'r1', read)).toBe(false)
    await grant(shared(0), key, 'w', write)
    await shared(2).forceRelease(key, read)
    expect(await shared(2).isLocked(key, read)).toBe(true)
    await shared(2).forceRelease(key, write)
    expect(await shared(2).isLocked(key, write)).toBe(false)
  })
})

describe('the wait queue', () => {
  test('a waiting writer blocks later readers, which then go together once it is done', async () => {
    const key = uniqueKey('shared-writer-first')
    const tokens = [await grant(shared(0), key, 'r1', read)]
    expect(await shared(1).acquire(key, 'w', write, 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    expect(await shared(2).acquire(key, 'r2', read, 10_000)).toMatchObject({ acquired: false })
    expect(await shared(2).acquire(key, 'r2', read, 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    expect(await shared(3).acquire(key, 'r3', read, 10_000, wait)).toMatchObject({ acquired: false, position: 2 })
    // A reader holds, so the writer is refused with the reader's lease end.
    const refused = await shared(1).acquire(key, 'w', write, 10_000, wait)
    expect(!refused.acquired && refused.expiresIn).toBeGreaterThan(9_000)
    expect(await shared(0).release(key, 'r1', read)).toBe(true)
    expect((await shared(2).acquire(key, 'r2', read, 10_000, wait)).acquired).toBe(false)
    tokens.push(await grant(shared(1), key, 'w', write))
    expect(await shared(1).release(key, 'w', write)).toBe(true)
    tokens.push(await grant(shared(3), key, 'r3', read))
    tokens.push(await grant(shared(2), key, 'r2', read))
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!)
    await shared(0).forceRelease(key, read)
    const { queue, queueLeases, queueModes } = sharedLockKeys(prefix, key)
    expect(await admin.exists(queue, queueLeases, queueModes)).toBe(0)
  })

  test('permits queue FIFO: shared places ahead count against the limit', async () => {
    const key = uniqueKey('shared-permit-queue')
    await grant(shared(0), key, 'h', permits(2))
    expect(await shared(1).acquire(key, 'a', permits(2), 10_000, wait)).toMatchObject({ acquired: true })
    await shared(0).release(key, 'h', permits(2))
    await grant(shared(0), key, 'h', permits(2))
    expect(await shared(2).acquire(key, 'b', permits(2), 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    expect(await shared(3).acquire(key, 'c', permits(2), 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    await shared(0).release(key, 'h', permits(2))
    // One slot: b's place is ahead of c, so c is refused and b granted.
    expect(await shared(3).acquire(key, 'c', permits(2), 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    await grant(shared(2), key, 'b', permits(2))
    expect(await shared(3).acquire(key, 'c', permits(2), 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    await shared(0).forceRelease(key, read)
    await grant(shared(3), key, 'c', permits(2))
    await shared(0).forceRelease(key, read)
  })

  test('a dead place is skipped: a waiter that stopped renewing holds up nobody once its place lease ends', async () => {
    const key = uniqueKey('shared-dead-place')
    await grant(shared(0), key, 'r1', read)
    expect(await shared(1).acquire(key, 'w', write, 10_000, { lease: 300 })).toMatchObject({ acquired: false, position: 0 })
    expect(await shared(2).acquire(key, 'r2', read, 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    await sleep(400)
    expect(await shared(2).acquire(key, 'r2', read, 10_000, wait)).toMatchObject({ acquired: true })
    const { queue, queueLeases, queueModes } = sharedLockKeys(prefix, key)
    expect(await admin.exists(queue, queueLeases, queueModes)).toBe(0)
    await shared(0).forceRelease(key, read)
  })

  test('leaving the queue is idempotent and lets those behind through', async () => {
    const key = uniqueKey('shared-leave')
    await grant(shared(0), key, 'r1', read)
    expect(await shared(1).acquire(key, 'w', write, 10_000, wait)).toMatchObject({ position: 0 })
    expect(await shared(2).acquire(key, 'r2', read, 10_000, wait)).toMatchObject({ position: 1 })
    await shared(1).leaveQueue(key, 'w')
    await shared(1).leaveQueue(key, 'w')
    await shared(1).leaveQueue(key, 'nobody')
    expect((await shared(2).acquire(key, 'r2', read, 10_000, wait)).acquired).toBe(true)
    await shared(0).forceRelease(key, read)
  })
})

describe('announcements', () => {
  test('name exactly the waiters the grant rule admits, in order, and nothing when nobody waits', async () => {
    const key = uniqueKey('shared-announce')
    const listener = await listen(key)
    try {
      await grant(shared(0), key, 'w', write)
      expect(await shared(0).release(key, 'w', write)).toBe(true)
      expect(await listener.settle()).toEqual([])

      await grant(shared(0), key, 'w', write)
      for (const owner of ['r1', 'r2']) await shared(1).acquire(key, owner, read, 10_000, wait)
      await shared(1).acquire(key, 'w2', write, 10_000, wait)
      await shared(1).acquire(key, 'r3', read, 10_000, wait)
      expect(await listener.settle()).toEqual([])
      await shared(0).release(key, 'w', write)
      // Both readers, not the writer behind them, nor the reader behind that writer.
      expect(await listener.settle()).toEqual(['r1', 'r2'])
      await grant(shared(1), key, 'r1', read)
      await grant(shared(1), key, 'r2', read)
      await shared(1).release(key, 'r1', read)
      expect(await listener.settle()).toEqual([])
      await shared(1).release(key, 'r2', read)
      expect(await listener.settle()).toEqual(['w2'])
      await grant(shared(1), key, 'w2', write)
      await shared(2).forceRelease(key, write)
      expect(await listener.settle()).toEqual(['r3'])
      await grant(shared(1), key, 'r3', read)
      await shared(1).release(key, 'r3', read)
      expect(await listener.settle()).toEqual([])
    } finally {
      await listener.unsubscribe()
    }
  })

  test('permits: as many as free slots, counting those named before; a leaving or dead place lets the next through', async () => {
    const key = uniqueKey('shared-announce-permits')
    const listener = await listen(key)
    try {
      await grant(shared(0), key, 'h1', permits(2))
      await grant(shared(0), key, 'h2', permits(2))
      for (const owner of ['q1', 'q2', 'q3']) await shared(1).acquire(key, owner, permits(2), 10_000, wait)
      await shared(0).release(key, 'h1', permits(2))
      expect(await listener.settle()).toEqual(['q1'])
      await shared(0).release(key, 'h2', permits(2))
      expect(await listener.settle()).toEqual(['q1', 'q2'])
      await shared(1).leaveQueue(key, 'q1')
      expect(await listener.settle()).toEqual(['q2', 'q3'])
      await grant(shared(1), key, 'q2', permits(2))
      await grant(shared(1), key, 'q3', permits(2))
      // A waiter whose place dies: the next client that looks drops it and names who is admitted.
      await shared(2).acquire(key, 'dies', permits(2), 10_000, { lease: 300 })
      expect(await shared(2).acquire(key, 'next', permits(3), 10_000, wait)).toMatchObject({ acquired: false })
      expect(await listener.settle()).toEqual([])
      await sleep(400)
      expect(await shared(2).isLocked(key, permits(2))).toBe(true)
      expect((await shared(2).acquire(key, 'late', permits(2), 10_000)).acquired).toBe(false)
      expect(await listener.settle()).toEqual(['next'])
      await shared(0).forceRelease(key, read)
    } finally {
      await listener.unsubscribe()
    }
  })

  test('a holder whose lease ended: the next client that looks names the waiters it held up', async () => {
    const key = uniqueKey('shared-announce-expiry')
    const listener = await listen(key)
    try {
      await grant(shared(0), key, 'r', read, 300)
      expect(await shared(1).acquire(key, 'w', write, 10_000, wait)).toMatchObject({ acquired: false })
      await sleep(400)
      await shared(2).acquire(key, 'late', read, 10_000)
      expect(await listener.settle()).toEqual(['w'])
      await grant(shared(1), key, 'w', write)
      await shared(1).release(key, 'w', write)
    } finally {
      await listener.unsubscribe()
    }
  })
})

describe('keys, memory and fencing', () => {
  test('a mutex and a shared lock with the same key do not exclude each other, nor share a fence', async () => {
    const key = uniqueKey('shared-apart')
    const store = stores[0]!
    expect((await store.acquire(key, 'm', 10_000)).acquired).toBe(true)
    expect((await store.shared.acquire(key, 's', write, 10_000)).acquired).toBe(true)
    expect(await store.shared.release(key, 'm', write)).toBe(false)
    expect(await store.release(key, 's')).toBe(false)
    const mutex = Object.values(lockKeys(prefix, key))
    const sharedKeys = Object.values(sharedLockKeys(prefix, key))
    expect(sharedKeys.filter((name) => mutex.includes(name))).toEqual([])
    await store.release(key, 'm')
    await store.shared.release(key, 's', write)
  })

  test('nothing lives longer than its leases; the fence outlives them by the grace, tokens keep rising without it', async () => {
    const key = uniqueKey('shared-memory')
    const store = new RedisStore({ connection: connections[0]!, prefix, fencingCounterGrace: 1_000 })
    const { writer, readers, fence, queue, queueLeases, queueModes } = sharedLockKeys(prefix, key)
    const first = await grant(store.shared, key, 'r', read, 300)
    expect(await store.shared.acquire(key, 'w', write, 10_000, { lease: 200 })).toMatchObject({ acquired: false })
    for (const name of [queue, queueLeases, queueModes]) {
      expect(await admin.pttl(name)).toBeGreaterThan(0)
      expect(await admin.pttl(name)).toBeLessThanOrEqual(200)
    }
    // Ended readers linger a while, for the next client that looks to announce who they held up.
    expect(await admin.pttl(readers)).toBeGreaterThan(READER_LINGER_MS)
    expect(await admin.pttl(readers)).toBeLessThanOrEqual(READER_LINGER_MS + 300)
    expect(await admin.pttl(fence)).toBeGreaterThan(1_000)
    await sleep(400)
    expect(await admin.exists(writer, queue, queueLeases, queueModes)).toBe(0)
    expect(await store.shared.isLocked(key, write)).toBe(false)
    // The counter gone (as after its grace): the next token starts from the server clock, above the last.
    await admin.del(fence)
    const second = await grant(store.shared, key, 'w', write, null)
    expect(second).toBeGreaterThan(first)
    expect(await admin.pttl(writer)).toBe(-1)
    expect(await admin.pttl(fence)).toBe(-1)
    expect(await store.shared.release(key, 'w', write)).toBe(true)
    expect(await admin.pttl(fence)).toBeGreaterThan(0)
    expect(await admin.pttl(fence)).toBeLessThanOrEqual(1_000)
  })

  test("another application's value at any shared key is a storage error, and is left alone", async () => {
    const names = Object.entries(sharedLockKeys(prefix, 'x')).filter(([name]) => name !== 'channel')
    for (const [name] of names) {
      const key = uniqueKey(`shared-wrongtype-${name}`)
      const target = sharedLockKeys(prefix, key)[name as keyof ReturnType<typeof sharedLockKeys>]
      await admin.hset(target, 'field', 'value')
      if (name === 'queueModes') {
        await admin.del(target)
        await admin.set(target, 'text')
      }
      const s = shared(0)
      const isStorageError = (error: unknown) => error instanceof errors.E_LOCK_STORAGE_ERROR
      await expect(s.acquire(key, 'o', read, 1_000, wait)).rejects.toSatisfy(isStorageError)
      await expect(s.acquire(key, 'o', write, 1_000)).rejects.toSatisfy(isStorageError)
      await expect(s.release(key, 'o', read)).rejects.toSatisfy(isStorageError)
      await expect(s.extend(key, 'o', write, 1_000)).rejects.toSatisfy(isStorageError)
      await expect(s.forceRelease(key, read)).rejects.toSatisfy(isStorageError)
      await expect(s.isLocked(key, permits(1))).rejects.toSatisfy(isStorageError)
      await expect(s.leaveQueue(key, 'o')).rejects.toSatisfy(isStorageError)
      expect(await admin.type(target)).toBe(name === 'queueModes' ? 'string' : 'hash')
      expect(await admin.keys(`${lockKeys(prefix, key).lock}*`)).toEqual([target])
      await admin.del(target)
    }
  })

  test('an unknown mode in the queue is a storage error, not a guess', async () => {
    const key = uniqueKey('shared-bad-mode')
    await grant(shared(0), key, 'h', read)
    await shared(1).acquire(key, 'w', write, 10_000, wait)
    await admin.hset(sharedLockKeys(prefix, key).queueModes, 'w', 'bogus')
    await expect(shared(2).acquire(key, 'x', read, 10_000, wait)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
    expect(await admin.zrange(sharedLockKeys(prefix, key).queue, '0', '-1')).toEqual(['w'])
    await shared(1).leaveQueue(key, 'w')
    await shared(0).forceRelease(key, read)
  })

  test('invalid modes and limits are refused before anything is sent', async () => {
    const key = uniqueKey('shared-invalid')
    for (const limit of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(shared(0).acquire(key, 'o', permits(limit), 1_000)).rejects.toThrow(errors.E_INVALID_ARGUMENT)
      await expect(shared(0).isLocked(key, permits(limit))).rejects.toThrow(errors.E_INVALID_ARGUMENT)
    }
    const bogus = { exclusive: 'yes', limit: null } as unknown as SharedMode
    await expect(shared(0).release(key, 'o', bogus)).rejects.toThrow(errors.E_INVALID_ARGUMENT)
    await expect(shared(0).acquire(key, 'o\uD800', read, 1_000)).rejects.toThrow(errors.E_INVALID_ARGUMENT)
  })

  test('malformed replies are storage errors, never "not acquired" or "not owned"', async () => {
    for (const reply of ['OK', null, [1, 2, 3], -5, 1.5, '1']) {
      const fake = { evalsha: async () => reply, eval: async () => reply, info: async () => '' } as unknown as Redis
      const store = new RedisStore({ connection: fake, prefix, onEvictionPolicy: 'warn' })
      await expect(store.shared.acquire('k', 'o', read, 1_000)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
      await expect(store.shared.release('k', 'o', read)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
      await expect(store.shared.isLocked('k', read)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
    }
  })
})

describe('round trips', () => {
  test('a permit acquire and its release are one command each; EVAL once after a script flush', async () => {
    const connection = connect()
    try {
      const store = new RedisStore({ connection, prefix })
      const key = uniqueKey('shared-round-trips')
      // Warm up: the eviction check (INFO) and the scripts' first EVAL.
      await grant(store.shared, key, 'warm', permits(3))
      await store.shared.release(key, 'warm', permits(3))
      const sent: string[] = []
      const original = connection.sendCommand.bind(connection)
      connection.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
        sent.push(command.name)
        return (original as (...args: unknown[]) => unknown)(command, ...rest)
      }) as typeof connection.sendCommand
      expect((await store.shared.acquire(key, 'o', permits(3), 10_000)).acquired).toBe(true)
      expect(sent).toEqual(['evalsha'])
      expect(await store.shared.release(key, 'o', permits(3))).toBe(true)
      expect(sent).toEqual(['evalsha', 'evalsha'])
      await store.close()
    } finally {
      await connection.quit()
    }
  })
})
