import { errors } from '@verrou/core'
import { lockKeys } from '@verrou/redis-scripts'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { connect, uniqueKey, unreachableConnection } from '../test/connections.js'
import { type RedisStore, redisStore } from './store.js'

const prefix = 'verrou-test:'
let redis: Redis
let store: RedisStore

beforeAll(() => {
  redis = connect()
  store = redisStore({ connection: redis, prefix: 'verrou-test:' })
})

afterAll(async () => {
  await store.close()
  await redis.quit()
})

const expectStorageError = (operation: string) => (error: unknown) => {
  expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
  expect((error as errors.E_LOCK_STORAGE_ERROR).operation).toBe(operation)
  expect((error as Error).cause).toBeDefined()
  return true
}

describe('options', () => {
  test('a connection is required and prefixes with braces are refused, before anything reaches Redis', () => {
    // @ts-expect-error: checking the runtime guard
    expect(() => redisStore({})).toThrow(errors.E_INVALID_ARGUMENT)
    // @ts-expect-error: checking the runtime guard
    expect(() => redisStore(undefined)).toThrow(errors.E_INVALID_ARGUMENT)
    expect(() => redisStore({ connection: redis, prefix: '{tenant}:' })).toThrow(errors.E_INVALID_ARGUMENT)
  })

  test('a ttl that is not a positive whole number is refused', async () => {
    const key = uniqueKey('ttl')
    await expect(store.acquire(key, 'a', 0)).rejects.toThrow(errors.E_INVALID_ARGUMENT)
    await expect(store.acquire(key, 'a', 1.5)).rejects.toThrow(errors.E_INVALID_ARGUMENT)
    await expect(store.extend(key, 'a', -1)).rejects.toThrow(errors.E_INVALID_ARGUMENT)
    expect(await redis.exists(lockKeys('verrou-test:', key).lock)).toBe(0)
  })
})

describe('keys with a prefix', () => {
  test('the lock and its fencing counter live under the prefix, the default being "verrou:"', async () => {
    const key = uniqueKey('prefix')
    const result = await store.acquire(key, 'owner-1', 10_000)
    if (!result.acquired) throw new Error('expected to acquire')
    expect(await redis.get(`verrou-test:{${key}}`)).toBe('owner-1')
    expect(await redis.get(`verrou-test:{${key}}:fence`)).toBe(String(result.fencingToken))

    const plain = redisStore({ connection: redis })
    expect((await plain.acquire(key, 'owner-2', 10_000)).acquired).toBe(true)
    expect(await redis.get(`verrou:{${key}}`)).toBe('owner-2')
    await plain.forceRelease(key)
    await store.forceRelease(key)
  })

  test('a keyPrefix set on the ioredis connection comes first', async () => {
    const prefixed = connect({ keyPrefix: 'app:' })
    const key = uniqueKey('key-prefix')
    const own = redisStore({ connection: prefixed, prefix })
    expect((await own.acquire(key, 'o', 10_000)).acquired).toBe(true)
    expect(await redis.get(`app:${prefix}{${key}}`)).toBe('o')
    expect(await redis.exists(`app:${prefix}{${key}}:fence`)).toBe(1)
    expect(await own.isLocked(key)).toBe(true)
    expect(await store.isLocked(key)).toBe(false)
    await own.forceRelease(key)
    await redis.del(`app:${prefix}{${key}}:fence`)
    await prefixed.quit()
  })

  test('two prefixes are two independent namespaces on one server', async () => {
    const key = uniqueKey('namespaces')
    const a = redisStore({ connection: redis, prefix: 'verrou-test:a:' })
    const b = redisStore({ connection: redis, prefix: 'verrou-test:b:' })
    expect((await a.acquire(key, 'x', 10_000)).acquired).toBe(true)
    expect(await b.isLocked(key)).toBe(false)
    expect((await b.acquire(key, 'y', 10_000)).acquired).toBe(true)
    expect(await a.release(key, 'y')).toBe(false)
    expect(await a.release(key, 'x')).toBe(true)
    expect(await b.isLocked(key)).toBe(true)
    await b.forceRelease(key)
  })
})

describe('expiry on the server', () => {
  test('the lease is a PX expiry on the lock key; a failed acquire reports what is left of it', async () => {
    const key = uniqueKey('px')
    await store.acquire(key, 'holder', 5_000)
    const pttl = await redis.pttl(lockKeys('verrou-test:', key).lock)
    expect(pttl).toBeGreaterThan(4_000)
    expect(pttl).toBeLessThanOrEqual(5_000)
    const failed = await store.acquire(key, 'other', 5_000)
    expect(failed.acquired).toBe(false)
    if (failed.acquired) return
    expect(failed.expiresIn).toBeGreaterThan(4_000)
    expect(failed.expiresIn).toBeLessThanOrEqual(5_000)
    await store.forceRelease(key)
  })

  test('a null ttl leaves no expiry on the server; extend switches between the two', async () => {
    const key = uniqueKey('null-ttl')
    const { lock } = lockKeys('verrou-test:', key)
    await store.acquire(key, 'holder', null)
    expect(await redis.pttl(lock)).toBe(-1)
    expect(await store.acquire(key, 'other', 1_000)).toEqual({ acquired: false })
    expect(await store.extend(key, 'holder', 2_000)).toBe(true)
    expect(await redis.pttl(lock)).toBeGreaterThan(1_000)
    expect(await store.extend(key, 'holder', null)).toBe(true)
    expect(await redis.pttl(lock)).toBe(-1)
    expect(await store.release(key, 'holder')).toBe(true)
    expect(await redis.exists(lock)).toBe(0)
  })
})

describe('fencing counter', () => {
  const grace = 1_000
  const graceful = () => redisStore({ connection: redis, prefix, fencingCounterGrace: grace })
  const take = async (own: RedisStore, key: string, ttl: number | null) => {
    const result = await own.acquire(key, 'o', ttl)
    if (!result.acquired) throw new Error('expected to acquire')
    return result.fencingToken
  }
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

  test('tokens strictly increase across release, force release and expiry', async () => {
    const key = uniqueKey('fence')
    const tokens = [await take(store, key, 10_000)]
    await store.release(key, 'o')
    tokens.push(await take(store, key, 10_000))
    await store.forceRelease(key)
    tokens.push(await take(store, key, 50))
    await sleep(120)
    tokens.push(await take(store, key, 10_000))
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!)
    for (const token of tokens) expect(Number.isSafeInteger(token)).toBe(true)
    await store.forceRelease(key)
  })

  test('the counter outlives its lease by the grace, released or not, then nothing is left; the next token is still higher', async () => {
    const own = graceful()
    const key = uniqueKey('fence-grace')
    const { lock, fence } = lockKeys(prefix, key)
    const first = await take(own, key, 500)
    const held = await redis.pttl(fence)
    expect(held).toBeGreaterThan(500 + grace - 200)
    expect(held).toBeLessThanOrEqual(500 + grace)
    // A release leaves the counter's expiry: it already ends the grace after the lease would have.
    expect(await own.release(key, 'o')).toBe(true)
    expect(await redis.exists(lock)).toBe(0)
    const released = await redis.pttl(fence)
    expect(released).toBeLessThanOrEqual(held)
    expect(released).toBeGreaterThan(grace)
    await sleep(500 + grace + 200)
    expect(await redis.exists(lock, fence)).toBe(0)
    expect(await take(own, key, 10_000)).toBeGreaterThan(first)
    await own.forceRelease(key)
  })

  test('a lease that never expires: its counter expires the grace after the grant or extend, and release leaves it', async () => {
    const own = graceful()
    const key = uniqueKey('fence-null')
    const { fence } = lockKeys(prefix, key)
    await take(own, key, null)
    expect(await redis.pttl(fence)).toBeGreaterThan(grace - 200)
    expect(await redis.pttl(fence)).toBeLessThanOrEqual(grace)
    expect(await own.extend(key, 'o', 5_000)).toBe(true)
    expect(await redis.pttl(fence)).toBeGreaterThan(5_000 + grace - 200)
    expect(await redis.pttl(fence)).toBeLessThanOrEqual(5_000 + grace)
    expect(await own.extend(key, 'o', null)).toBe(true)
    expect(await redis.pttl(fence)).toBeGreaterThan(grace - 200)
    expect(await redis.pttl(fence)).toBeLessThanOrEqual(grace)
    expect(await own.release(key, 'o')).toBe(true)
    expect(await redis.pttl(fence)).toBeGreaterThan(0)
    expect(await redis.pttl(fence)).toBeLessThanOrEqual(grace)
    await take(own, key, null)
    await own.forceRelease(key)
    expect(await redis.pttl(fence)).toBeGreaterThan(0)
    expect(await redis.pttl(fence)).toBeLessThanOrEqual(grace)
  })

  test('a counter that expired while a lease that never expires was held: nobody else gets a token meanwhile, and the next one is still higher', async () => {
    const own = graceful()
    const key = uniqueKey('fence-null-held')
    const { lock, fence } = lockKeys(prefix, key)
    const first = await take(own, key, null)
    await sleep(grace + 200)
    expect(await redis.exists(fence)).toBe(0)
    expect(await redis.get(lock)).toBe('o')
    expect(await own.acquire(key, 'other', 10_000)).toMatchObject({ acquired: false })
    expect(await own.extend(key, 'o', null)).toBe(true)
    expect(await own.release(key, 'o')).toBe(true)
    const next = await own.acquire(key, 'other', 10_000)
    expect(next.acquired).toBe(true)
    expect(next.acquired && next.fencingToken).toBeGreaterThan(first)
    await own.forceRelease(key)
  })

  test('a stale owner changes nothing about the counter', async () => {
    const own = graceful()
    const key = uniqueKey('fence-stale')
    const { fence } = lockKeys(prefix, key)
    await take(own, key, 10_000)
    const before = await redis.pttl(fence)
    expect(await own.extend(key, 'stranger', 60_000)).toBe(false)
    expect(await own.release(key, 'stranger')).toBe(false)
    expect(await redis.pttl(fence)).toBeLessThanOrEqual(before)
    expect(await redis.pttl(fence)).toBeGreaterThan(10_000)
    await own.forceRelease(key)
  })

  test('a counter ahead of the clock is kept until the clock has passed it by the grace', async () => {
    const own = graceful()
    const key = uniqueKey('fence-ahead')
    const { fence } = lockKeys(prefix, key)
    const [seconds, micros] = await redis.time()
    const ahead = Number(seconds) * 1_000_000 + Number(micros) + 30_000_000
    await redis.set(fence, String(ahead))
    expect(await take(own, key, 1_000)).toBe(ahead + 1)
    expect(await own.release(key, 'o')).toBe(true)
    expect(await redis.pttl(fence)).toBeGreaterThan(30_000)
    await redis.del(fence)
  })

  test('a counter from before (no expiry, small) gets an expiry, and tokens still rise', async () => {
    const own = graceful()
    const key = uniqueKey('fence-legacy')
    const { fence } = lockKeys(prefix, key)
    await redis.set(fence, '41')
    expect(await take(own, key, 1_000)).toBeGreaterThan(41)
    await own.release(key, 'o')
    expect(await redis.pttl(fence)).toBeGreaterThan(0)
    await redis.del(fence)
  })

  test('a foreign value in the counter is a storage error and leaves the lock free', async () => {
    const key = uniqueKey('fence-corrupt')
    const { fence } = lockKeys(prefix, key)
    for (const write of [() => redis.set(fence, 'not a number'), () => redis.set(fence, '1.5'), () => redis.sadd(fence, 'x')]) {
      await redis.del(fence)
      await write()
      await expect(store.acquire(key, 'o', 10_000)).rejects.toSatisfy(expectStorageError('acquire'))
      expect(await store.isLocked(key)).toBe(false)
    }
    await redis.del(fence)
  })

  test('a release never reads the counter, whatever the lease: a foreign value there is left for the next acquire to report', async () => {
    const key = uniqueKey('fence-corrupt-release')
    const { lock, fence } = lockKeys(prefix, key)
    for (const ttl of [10_000, null]) {
      if (ttl === null) await redis.set(lock, 'o')
      else await redis.set(lock, 'o', 'PX', ttl)
      await redis.sadd(fence, 'x')
      expect(await store.release(key, 'o')).toBe(true)
      expect(await redis.exists(lock)).toBe(0)
      expect(await redis.smembers(fence)).toEqual(['x'])
      await expect(store.acquire(key, 'o', 10_000)).rejects.toSatisfy(expectStorageError('acquire'))
      expect(await store.isLocked(key)).toBe(false)
      await redis.del(fence)
    }
  })

  test('a token past the largest safe integer is a storage error, and the lock stays free', async () => {
    const key = uniqueKey('fence-max')
    const { fence } = lockKeys(prefix, key)
    await redis.set(fence, String(Number.MAX_SAFE_INTEGER))
    await expect(store.acquire(key, 'o', 10_000)).rejects.toSatisfy(expectStorageError('acquire'))
    expect(await store.isLocked(key)).toBe(false)
    await redis.del(fence)
  })
})

describe("another application's value at a lock key", () => {
  test.each([
    ['a hash', (key: string) => redis.hset(key, 'field', 'value')],
    ['a list', (key: string) => redis.rpush(key, 'item')],
  ])('%s: every operation is a storage error, never "not acquired" or "not owned", and it is left alone', async (_, write) => {
    const key = uniqueKey('wrongtype')
    const { lock } = lockKeys(prefix, key)
    await write(lock)
    await expect(store.acquire(key, 'o', 10_000)).rejects.toSatisfy(expectStorageError('acquire'))
    await expect(store.acquire(key, 'o', null)).rejects.toSatisfy(expectStorageError('acquire'))
    await expect(store.release(key, 'o')).rejects.toSatisfy(expectStorageError('release'))
    await expect(store.extend(key, 'o', 1_000)).rejects.toSatisfy(expectStorageError('extend'))
    await expect(store.forceRelease(key)).rejects.toSatisfy(expectStorageError('force release'))
    expect(await redis.exists(lock)).toBe(1)
    await redis.del(lock)
  })
})

describe('owners are opaque strings', () => {
  test.each(['00123', '123', '1e3', 'null', 'true', '"quoted"', '{"a":1}', '[1,2]', '9007199254740993'])(
    'owner %j only matches itself',
    async (owner) => {
      const key = uniqueKey('owner')
      expect((await store.acquire(key, owner, 10_000)).acquired).toBe(true)
      expect(await store.release(key, `${owner} `)).toBe(false)
      expect(await store.extend(key, JSON.stringify(owner), 10_000)).toBe(false)
      expect(await store.extend(key, owner, 10_000)).toBe(true)
      expect(await store.release(key, owner)).toBe(true)
    },
  )
})

describe('keys and owners', () => {
  test('any well-formed string is a key of its own: NUL, newlines, emoji, braces, 10,000 characters', async () => {
    const base = uniqueKey('exotic')
    const keys = ['\u0000', 'a\u0000b', 'line\nbreak', '🔒', '}', '{x}', '\\}', 'x'.repeat(10_000)].map((suffix) => base + suffix)
    for (const key of keys) expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
    for (const key of keys) expect(await store.isLocked(key)).toBe(true)
    for (const key of keys) expect(await store.release(key, 'o')).toBe(true)
  })

  test('an owner with a lone surrogate is refused: UTF-8 would merge it with another owner', async () => {
    const key = uniqueKey('surrogate')
    await expect(store.acquire(key, 'owner\uD800', 10_000)).rejects.toThrow(errors.E_INVALID_ARGUMENT)
    expect(await store.isLocked(key)).toBe(false)
    await store.acquire(key, 'owner\uFFFD', 10_000)
    await expect(store.release(key, 'owner\uDC00')).rejects.toThrow(errors.E_INVALID_ARGUMENT)
    expect(await store.release(key, 'owner\uFFFD')).toBe(true)
  })
})

describe('scripts and round trips', () => {
  test('every operation is one command on the server once the scripts are loaded', async () => {
    const key = uniqueKey('round-trips')
    const { lock } = lockKeys('verrou-test:', key)
    // Load the scripts first: a server that lacks one costs one extra EVAL, once.
    await store.acquire(key, 'warm', 1_000)
    await store.extend(key, 'warm', 1_000)
    await store.release(key, 'warm')
    await store.leaveQueue(key, 'warm')
    await store.forceRelease(key)

    const monitor = await connect().monitor()
    const seen: string[] = []
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      // Commands a script runs show up too, with "lua" as their source: they are not round trips.
      if (source !== 'lua' && args.includes(lock)) seen.push(String(args[0]).toLowerCase())
    })
    await new Promise((resolve) => setTimeout(resolve, 50))
    await store.acquire(key, 'o', 10_000)
    await store.acquire(key, 'p', 10_000)
    await store.acquire(key, 'q', 10_000, { lease: 1_000 })
    await store.extend(key, 'o', 10_000)
    await store.isLocked(key)
    await store.release(key, 'o')
    await store.leaveQueue(key, 'q')
    await store.forceRelease(key)
    // MONITOR reports on its own connection, later than the replies: wait for all of them (a fixed 100 ms
    // was not always enough on a loaded machine), then a little more for any command too many.
    const until = performance.now() + 3_000
    while (seen.length < 8 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 20))
    await new Promise((resolve) => setTimeout(resolve, 100))
    monitor.disconnect()
    expect(seen).toEqual(['evalsha', 'evalsha', 'evalsha', 'evalsha', 'exists', 'evalsha', 'evalsha', 'evalsha'])
  })

  test('a server that lost its scripts (restart, failover, SCRIPT FLUSH) gets them again by EVAL', async () => {
    const key = uniqueKey('noscript')
    await redis.script('FLUSH')
    expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
    await redis.script('FLUSH')
    expect(await store.extend(key, 'o', 10_000)).toBe(true)
    await redis.script('FLUSH')
    expect(await store.release(key, 'o')).toBe(true)
    await redis.script('FLUSH')
    await store.forceRelease(key)
    expect(await store.isLocked(key)).toBe(false)
  })
})

describe('a connection that is down', () => {
  test('a connection closed by its owner: every operation is a storage error at once', async () => {
    const closed = connect()
    await closed.quit()
    const down = redisStore({ connection: closed })
    const key = uniqueKey('closed')
    const started = performance.now()
    await expect(down.acquire(key, 'o', 1_000)).rejects.toSatisfy(expectStorageError('acquire'))
    await expect(down.release(key, 'o')).rejects.toSatisfy(expectStorageError('release'))
    await expect(down.extend(key, 'o', 1_000)).rejects.toSatisfy(expectStorageError('extend'))
    await expect(down.forceRelease(key)).rejects.toSatisfy(expectStorageError('force release'))
    await expect(down.isLocked(key)).rejects.toSatisfy(expectStorageError('check'))
    expect(performance.now() - started).toBeLessThan(1_000)
  })

  test('a server that does not answer: a clear storage error naming the key, no hang', async () => {
    const connection = await unreachableConnection()
    const down = redisStore({ connection })
    const key = uniqueKey('unreachable')
    const started = performance.now()
    const error = await down.acquire(key, 'o', 1_000).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    expect((error as Error).message).toContain(key)
    expect((error as errors.E_LOCK_STORAGE_ERROR).key).toBe(key)
    expect(performance.now() - started).toBeLessThan(5_000)
    connection.disconnect()
  })
})

describe('close', () => {
  test('never closes the connection it was given', async () => {
    const connection = connect()
    // Wait out the handshake: ioredis 6 is still in 'connect' when close() returns on a fresh connection.
    await connection.ping()
    const own = redisStore({ connection })
    const key = uniqueKey('close')
    await own.subscribeToReleases(key, () => {})
    await own.close()
    await own.close()
    expect(connection.status).toBe('ready')
    expect(await own.acquire(key, 'o', 1_000)).toMatchObject({ acquired: true })
    await own.forceRelease(key)
    await connection.quit()
  })
})
