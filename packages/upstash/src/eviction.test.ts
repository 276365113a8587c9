import { errors, type Logger } from '@verrou/core'
import { type PrivateRedis, startPrivateRedis } from '@verrou/test-utils/redis-server'
import { startUpstashRestServer, type UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import { afterEach, describe, expect, test } from 'vitest'
import { client, uniqueKey } from '../test/setup.js'
import { upstashStore } from './store.js'

// A REST server in front of a redis-server of our own: eviction settings must never reach the shared one.
let redis: PrivateRedis | undefined
let rest: UpstashRestServer | undefined

afterEach(async () => {
  await rest?.close()
  await redis?.dispose()
  rest = undefined
  redis = undefined
})

async function restServer(...args: string[]): Promise<UpstashRestServer> {
  redis = await startPrivateRedis({ args })
  rest = await startUpstashRestServer({ redisUrl: redis.url, token: 'eviction-test' })
  return rest
}

const requests = (server: UpstashRestServer) => server.requests.command + server.requests.pipeline

function warnings() {
  const lines: string[] = []
  const ignore = () => {}
  const logger: Logger = {
    trace: ignore,
    debug: ignore,
    info: ignore,
    warn: (_, message) => lines.push(message ?? ''),
    error: ignore,
  }
  return { logger, lines }
}

describe('a database that may evict keys', () => {
  test('by default every operation is a storage error naming the policy', async () => {
    const server = await restServer('--maxmemory', '100mb', '--maxmemory-policy', 'allkeys-lru')
    const store = upstashStore({ connection: client(server) })
    const key = uniqueKey('evicting')
    const failure = await store.acquire(key, 'o', 10_000).catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    expect((failure as Error).message).toContain('maxmemory-policy allkeys-lru')
    await expect(store.isLocked(key)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
  })

  test("onEvictionPolicy 'warn': runs, warns once", async () => {
    const server = await restServer('--maxmemory', '100mb', '--maxmemory-policy', 'volatile-random')
    const { logger, lines } = warnings()
    const store = upstashStore({ connection: client(server), onEvictionPolicy: 'warn', logger })
    const key = uniqueKey('warned')
    expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
    expect(await store.release(key, 'o')).toBe(true)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('maxmemory-policy volatile-random')
  })
})

describe('a database that does not evict', () => {
  test('noeviction: one extra request on the first operation of a store, none after', async () => {
    const server = await restServer('--maxmemory', '100mb', '--maxmemory-policy', 'noeviction')
    const { logger, lines } = warnings()
    const store = upstashStore({ connection: client(server, { enableAutoPipelining: false }), logger })
    const key = uniqueKey('calm')
    let before = requests(server)
    expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
    // INFO, then EVALSHA refused (a fresh server lacks the script), then EVAL.
    expect(requests(server) - before).toBe(3)
    before = requests(server)
    expect(await store.extend(key, 'o', 10_000)).toBe(true)
    expect(await store.isLocked(key)).toBe(true)
    expect(await store.release(key, 'o')).toBe(true)
    expect(await store.acquire(key, 'o', 10_000)).toMatchObject({ acquired: true })
    expect(requests(server) - before).toBe(2 + 1 + 2 + 1)
    expect(lines).toEqual([])
  })
})
