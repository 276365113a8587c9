import { readFile } from 'node:fs/promises'
import { Redis as CloudflareRedis } from '@upstash/redis/cloudflare'
import { errors } from '@verrou/core'
import { lockKeys } from '@verrou/redis-scripts'
import type { UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import { Redis as IORedis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { client, redisUrl, startRestServer, uniqueKey } from '../test/setup.js'
import { UpstashStore, upstashStore } from './store.js'

const prefix = 'verrou-test:'
let server: UpstashRestServer
let redis: IORedis

beforeAll(async () => {
  server = await startRestServer()
  redis = new IORedis(redisUrl)
})

afterAll(async () => {
  await server?.close()
  await redis?.quit()
})

const isStorageError = (operation: string) => (error: unknown) => {
  expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
  expect((error as errors.E_LOCK_STORAGE_ERROR).operation).toBe(operation)
  expect((error as Error).cause).toBeDefined()
  return true
}

describe('options', () => {
  test('a connection is required and prefixes with braces are refused', () => {
    // @ts-expect-error: checking the runtime guard
    expect(() => upstashStore({})).toThrow(errors.E_INVALID_ARGUMENT)
    expect(() => upstashStore({ connection: client(server), prefix: 'a{b}' })).toThrow(errors.E_INVALID_ARGUMENT)
  })
})

describe('on the server', () => {
  test('the same key layout as @verrou/redis: owner under the prefix, PX lease, a counter that outlives the lease by the grace', async () => {
    const store = new UpstashStore({ connection: client(server), prefix, fencingCounterGrace: 1_000 })
    const key = uniqueKey('layout')
    const { lock, fence } = lockKeys(prefix, key)
    const result = await store.acquire(key, 'owner-1', 1_000)
    if (!result.acquired) throw new Error('expected to acquire')
    expect(await redis.get(lock)).toBe('owner-1')
    expect(await redis.pttl(lock)).toBeGreaterThan(800)
    expect(await redis.get(fence)).toBe(String(result.fencingToken))
    expect(await redis.pttl(fence)).toBeGreaterThan(1_000)
    // The release leaves the counter's expiry: the grace after the lease would have ended.
    expect(await store.release(key, 'owner-1')).toBe(true)
    expect(await redis.exists(lock)).toBe(0)
    expect(await redis.pttl(fence)).toBeGreaterThan(1_000)
    expect(await redis.pttl(fence)).toBeLessThanOrEqual(2_000)
    await new Promise((resolve) => setTimeout(resolve, 2_200))
    expect(await redis.exists(fence)).toBe(0)
    const again = await store.acquire(key, 'owner-1', 5_000)
    expect(again.acquired && again.fencingToken).toBeGreaterThan(result.fencingToken)
    await store.forceRelease(key)
  })

  test('a null ttl leaves no expiry; a failed acquire then reports no expiresIn', async () => {
    const store = new UpstashStore({ connection: client(server), prefix })
    const key = uniqueKey('null-ttl')
    await store.acquire(key, 'holder', null)
    expect(await redis.pttl(lockKeys(prefix, key).lock)).toBe(-1)
    expect(await store.acquire(key, 'other', 1_000)).toEqual({ acquired: false })
    expect(await store.extend(key, 'holder', 3_000)).toBe(true)
    const failed = await store.acquire(key, 'other', 1_000)
    expect(failed.acquired).toBe(false)
    expect(!failed.acquired && failed.expiresIn).toBeGreaterThan(2_000)
    await store.forceRelease(key)
  })
})

// The client JSON-parses what it reads back and base64-decodes strings; try it in every configuration.
const configurations = [
  { name: 'client defaults (auto-pipelining is on by default in 1.39)', options: {} },
  { name: 'auto-pipelining off', options: { enableAutoPipelining: false } },
  { name: 'no automatic deserialisation', options: { automaticDeserialization: false } },
  { name: 'no base64 encoding', options: { responseEncoding: false as const } },
]

describe.each(configurations)('owners and tokens come back intact ($name)', ({ options }) => {
  test.each(['007', '123', '1e3', 'null', 'true', '"quoted"', '{"a":1}', '[1,2]', '9007199254740993', 'T0s='])(
    'owner %j only matches itself',
    async (owner) => {
      const store = new UpstashStore({ connection: client(server, options), prefix })
      const key = uniqueKey('owner')
      expect((await store.acquire(key, owner, 10_000)).acquired).toBe(true)
      expect(await redis.get(lockKeys(prefix, key).lock)).toBe(owner)
      expect(await store.release(key, JSON.stringify(owner))).toBe(false)
      expect(await store.extend(key, Number.isNaN(Number(owner)) ? `${owner} ` : String(Number(owner)), 10_000)).toBe(
        owner === String(Number(owner)),
      )
      expect(await store.extend(key, owner, 10_000)).toBe(true)
      expect(await store.release(key, owner)).toBe(true)
    },
  )

  test('a large fencing token is returned exactly; one past the safe range is a storage error', async () => {
    const store = new UpstashStore({ connection: client(server, options), prefix })
    const key = uniqueKey('big-token')
    const { fence } = lockKeys(prefix, key)
    await redis.set(fence, String(Number.MAX_SAFE_INTEGER - 1))
    expect(await store.acquire(key, 'o', 10_000)).toEqual({ acquired: true, fencingToken: Number.MAX_SAFE_INTEGER })
    await store.release(key, 'o')
    await expect(store.acquire(key, 'o', 10_000)).rejects.toSatisfy(isStorageError('acquire'))
    await store.forceRelease(key)
    await redis.del(fence)
  })
})

const totalRequests = () => server.requests.command + server.requests.pipeline + server.requests.multiExec

describe('owners', () => {
  test('an owner with a lone surrogate is refused: UTF-8 would merge it with another owner', async () => {
    const store = new UpstashStore({ connection: client(server), prefix })
    const key = uniqueKey('surrogate')
    await expect(store.acquire(key, 'owner\uD800', 10_000)).rejects.toThrow(errors.E_INVALID_ARGUMENT)
    await store.acquire(key, 'owner\uFFFD', 10_000)
    await expect(store.release(key, 'owner\uDC00')).rejects.toThrow(errors.E_INVALID_ARGUMENT)
    expect(await store.release(key, 'owner\uFFFD')).toBe(true)
  })
})

describe('round trips', () => {
  test.each([false, true])(
    'one HTTP request per operation (auto-pipelining %s) once the scripts are loaded; EVAL once after a script flush',
    async (enableAutoPipelining) => {
      const store = new UpstashStore({ connection: client(server, { enableAutoPipelining }), prefix })
      const key = uniqueKey('round-trips')
      await store.acquire(key, 'warm', 1_000)
      await store.extend(key, 'warm', 1_000)
      await store.release(key, 'warm')
      await store.leaveQueue(key, 'warm')
      await store.forceRelease(key)

      const before = totalRequests()
      await store.acquire(key, 'o', 10_000)
      await store.acquire(key, 'p', 10_000)
      await store.acquire(key, 'q', 10_000, { lease: 1_000 })
      await store.extend(key, 'o', 10_000)
      await store.isLocked(key)
      await store.release(key, 'o')
      await store.leaveQueue(key, 'q')
      await store.forceRelease(key)
      expect(totalRequests() - before).toBe(8)

      await redis.script('FLUSH')
      const flushed = totalRequests()
      expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
      expect(totalRequests() - flushed).toBe(2)
      await store.forceRelease(key)
    },
  )

  test('with auto-pipelining, concurrent operations share one request and each gets its own answer', async () => {
    const store = new UpstashStore({ connection: client(server, { enableAutoPipelining: true }), prefix })
    const keys = Array.from({ length: 8 }, (_, i) => uniqueKey(`batch-${i}`))
    await store.acquire(keys[0]!, 'warm', 1_000) // load the script
    await redis.set(lockKeys(prefix, keys[1]!).lock, 'someone-else', 'PX', 10_000)
    const before = { ...server.requests }
    const results = await Promise.all(keys.map((key) => store.acquire(key, 'o', 10_000)))
    expect(server.requests.command - before.command).toBe(0)
    expect(server.requests.pipeline - before.pipeline).toBe(1)
    expect(results.map((result) => result.acquired)).toEqual([false, false, true, true, true, true, true, true])
    await Promise.all(keys.map((key) => store.forceRelease(key)))
  })
})

describe('backend failures are storage errors, never "not acquired"', () => {
  test('a wrong token', async () => {
    const store = new UpstashStore({ connection: client(server, { token: 'wrong', retry: false }), prefix })
    const key = uniqueKey('token')
    await expect(store.acquire(key, 'o', 1_000)).rejects.toSatisfy(isStorageError('acquire'))
    await expect(store.release(key, 'o')).rejects.toSatisfy(isStorageError('release'))
    await expect(store.extend(key, 'o', 1_000)).rejects.toSatisfy(isStorageError('extend'))
    await expect(store.isLocked(key)).rejects.toSatisfy(isStorageError('check'))
    await expect(store.forceRelease(key)).rejects.toSatisfy(isStorageError('force release'))
  })

  test.each([false, true])(
    "another application's hash at the lock key (auto-pipelining %s): a storage error for every operation, and left alone",
    async (enableAutoPipelining) => {
      const store = new UpstashStore({ connection: client(server, { enableAutoPipelining }), prefix })
      const key = uniqueKey('wrongtype')
      const { lock } = lockKeys(prefix, key)
      await redis.hset(lock, 'field', 'value')
      await expect(store.acquire(key, 'o', 1_000)).rejects.toSatisfy(isStorageError('acquire'))
      await expect(store.release(key, 'o')).rejects.toSatisfy(isStorageError('release'))
      await expect(store.extend(key, 'o', 1_000)).rejects.toSatisfy(isStorageError('extend'))
      await expect(store.forceRelease(key)).rejects.toSatisfy(isStorageError('force release'))
      expect(await redis.hget(lock, 'field')).toBe('value')
      await redis.del(lock)
    },
  )

  test('a server that went away, in bounded time', async () => {
    const gone = await startRestServer()
    const store = new UpstashStore({ connection: client(gone, { retry: false }), prefix })
    await gone.close()
    const started = performance.now()
    await expect(store.acquire(uniqueKey('gone'), 'o', 1_000)).rejects.toSatisfy(isStorageError('acquire'))
    expect(performance.now() - started).toBeLessThan(2_000)
  })
})

describe('runs where serverless code runs', () => {
  test('the Cloudflare build of the client fits as the connection', async () => {
    const connection = new CloudflareRedis({ url: server.url, token: server.token, enableTelemetry: false })
    const store = new UpstashStore({ connection, prefix })
    const key = uniqueKey('cloudflare')
    expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
    expect(await store.release(key, 'o')).toBe(true)
  })

  test('the store and the scripts it bundles import nothing but core and the client, and no Node API', async () => {
    const shared = [
      'index.ts',
      'keys.ts',
      'scripts.ts',
      'lua_helpers.ts',
      'replies.ts',
      'scripted_store.ts',
      'eviction.ts',
      'shared_lua.ts',
      'shared_scripts.ts',
      'scripted_shared_store.ts',
    ].map((file) => `../../redis-scripts/src/${file}`)
    for (const file of ['./store.ts', './index.ts', ...shared]) {
      const withComments = await readFile(new URL(file, import.meta.url), 'utf8')
      const source = withComments.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')
      const imports = [...source.matchAll(/from '([^']+)'/g)].map((match) => match[1])
      for (const specifier of imports)
        expect(specifier).toMatch(/^(@verrou\/core|@verrou\/redis-scripts|@upstash\/redis|\.{1,2}\/.*)$/)
      expect(source).not.toMatch(/\b(process|Buffer|require)\b[.(]/)
      expect(source).not.toMatch(/node:/)
    }
  })
})
