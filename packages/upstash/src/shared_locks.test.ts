import { errors, type SharedMode } from '@verrou/core'
import { sharedLockKeys } from '@verrou/redis-scripts'
import type { UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import { Redis as IORedis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { client, redisUrl, startRestServer, uniqueKey } from '../test/setup.js'
import { UpstashStore } from './store.js'

/**
 * Semaphores and read-write locks through the REST API: the scripts @verrou/redis runs (tested in depth
 * there), here through the @upstash/redis client with auto-pipelining off and on, one client per store as
 * separate invocations would have.
 */
const prefix = 'verrou-test:'
const wait = { lease: 10_000 }
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const write: SharedMode = { exclusive: true, limit: null }
const read: SharedMode = { exclusive: false, limit: null }
const permits = (limit: number): SharedMode => ({ exclusive: false, limit })

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

const totalRequests = () => server.requests.command + server.requests.pipeline + server.requests.multiExec

describe.each([false, true])('shared locks over REST (auto-pipelining %s)', (enableAutoPipelining) => {
  const store = () => new UpstashStore({ connection: client(server, { enableAutoPipelining }), prefix })

  test('permits: limit held, expired permit frees its slot, stale owner refused, tokens rise', async () => {
    const [a, b, c] = [store(), store(), store()]
    const key = uniqueKey('upstash-permits')
    const first = await a.shared.acquire(key, 'a', permits(2), 300)
    const second = await b.shared.acquire(key, 'b', permits(2), 10_000)
    expect(first.acquired && second.acquired && second.fencingToken > first.fencingToken).toBe(true)
    expect(await c.shared.acquire(key, 'c', permits(2), 10_000)).toMatchObject({ acquired: false })
    expect(await c.shared.isLocked(key, permits(2))).toBe(true)
    await sleep(400)
    expect(await a.shared.release(key, 'a', permits(2))).toBe(false)
    const third = await c.shared.acquire(key, 'c', permits(2), 10_000)
    expect(third.acquired && second.acquired && third.fencingToken > second.fencingToken).toBe(true)
    await a.shared.forceRelease(key, read)
    expect(await c.shared.release(key, 'c', permits(2))).toBe(false)
  })

  test('a waiting writer blocks later readers; a dead place holds up nobody', async () => {
    const [a, b, c] = [store(), store(), store()]
    const key = uniqueKey('upstash-rw')
    expect((await a.shared.acquire(key, 'r1', read, 10_000)).acquired).toBe(true)
    expect(await b.shared.acquire(key, 'w', write, 10_000, { lease: 300 })).toMatchObject({ acquired: false, position: 0 })
    expect(await c.shared.acquire(key, 'r2', read, 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    await sleep(400)
    expect((await c.shared.acquire(key, 'r2', read, 10_000, wait)).acquired).toBe(true)
    expect(await a.shared.acquire(key, 'w', write, 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    await a.shared.forceRelease(key, read)
    expect((await a.shared.acquire(key, 'w', write, 10_000, wait)).acquired).toBe(true)
    expect(await c.shared.isLocked(key, read)).toBe(true)
    expect(await a.shared.extend(key, 'w', write, 10_000)).toBe(true)
    expect(await a.shared.release(key, 'w', write)).toBe(true)
    await b.shared.leaveQueue(key, 'w')
  })

  test('one HTTP request per operation; releases can be heard over an event stream', async () => {
    const s = store()
    const key = uniqueKey('upstash-shared-round-trips')
    expect(typeof s.shared.subscribeToReleases).toBe('function')
    // Warm up: the eviction check and each script's first EVAL.
    await s.shared.acquire(key, 'warm', permits(3), 1_000, wait)
    await s.shared.extend(key, 'warm', permits(3), 1_000)
    await s.shared.isLocked(key, permits(3))
    await s.shared.release(key, 'warm', permits(3))
    await s.shared.leaveQueue(key, 'warm')
    await s.shared.forceRelease(key, read)
    const before = totalRequests()
    expect((await s.shared.acquire(key, 'o', permits(3), 10_000)).acquired).toBe(true)
    expect(totalRequests() - before).toBe(1)
    expect(await s.shared.release(key, 'o', permits(3))).toBe(true)
    expect(totalRequests() - before).toBe(2)
  })

  test("another application's value at a shared key is a storage error, and is left alone", async () => {
    const s = store()
    const key = uniqueKey('upstash-shared-wrongtype')
    const { readers } = sharedLockKeys(prefix, key)
    await redis.set(readers, 'text')
    await expect(s.shared.acquire(key, 'o', read, 1_000)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
    await expect(s.shared.release(key, 'o', read)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
    await expect(s.shared.isLocked(key, write)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
    expect(await redis.get(readers)).toBe('text')
    await redis.del(readers)
  })
})
