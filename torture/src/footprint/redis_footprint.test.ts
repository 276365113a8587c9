import { Redis as UpstashRedis } from '@upstash/redis'
import type { LockStore } from '@verrou/core'
import { redisStore } from '@verrou/redis'
import { type PrivateRedis, startPrivateRedis } from '@verrou/test-utils/redis-server'
import { startUpstashRestServer, type UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import { upstashStore } from '@verrou/upstash'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

/**
 * What a Redis store leaves behind: 100,000 distinct keys locked once each (as `invoice:${id}` would
 * be), then the server's keys counted once the fencing counters' grace has passed (a counter outlives its
 * lock's lease by the grace, released or not). Only the locks still held may remain, with their counters;
 * and a key locked again after the grace gets a higher token.
 */
const KEYS = 100_000
const HELD = 10
const CONCURRENCY = 500
const GRACE = 1_000
/** The lease of each key locked once: its counter goes the grace after this, whenever it was released. */
const LEASE = 2_000

let redis: PrivateRedis
let admin: Redis
let rest: UpstashRestServer

beforeAll(async () => {
  // A server of our own, so DBSIZE counts nothing but this test's keys.
  redis = await startPrivateRedis({ persistent: false })
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  rest = await startUpstashRestServer({ redisUrl: redis.url, token: `footprint-${Math.random().toString(36).slice(2)}` })
})

afterAll(async () => {
  await rest?.close()
  admin?.disconnect()
  await redis?.dispose()
})

async function keysUnder(prefix: string): Promise<number> {
  let count = 0
  let cursor = '0'
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5_000)
    cursor = next
    count += keys.length
  } while (cursor !== '0')
  return count
}

async function token(store: LockStore, key: string, ttl: number | null): Promise<number> {
  const result = await store.acquire(key, 'owner', ttl)
  if (!result.acquired) throw new Error(`${key} was not acquired`)
  return result.fencingToken
}

/** Locks and releases `count` distinct keys, `CONCURRENCY` at a time; returns the first key's token. */
async function lockEachOnce(store: LockStore, count: number): Promise<number> {
  let first = 0
  let next = 0
  const worker = async () => {
    while (next < count) {
      const id = next++
      const key = `invoice:${id}`
      const fencingToken = await token(store, key, LEASE)
      if (id === 0) first = fencingToken
      if (!(await store.release(key, 'owner'))) throw new Error(`${key} was not released`)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return first
}

interface Opened {
  store: LockStore
  close(): void
}

const stores: { name: string; open: (prefix: string) => Opened }[] = [
  {
    name: 'redis',
    open: (prefix) => {
      const connection = new Redis(redis.url, { maxRetriesPerRequest: 1 })
      return { store: redisStore({ connection, prefix, fencingCounterGrace: GRACE }), close: () => connection.disconnect() }
    },
  },
  {
    name: 'upstash',
    open: (prefix) => {
      // Auto-pipelining (the client's default) packs the concurrent operations into few HTTP requests.
      const connection = new UpstashRedis({ url: rest.url, token: rest.token, enableTelemetry: false })
      return { store: upstashStore({ connection, prefix, fencingCounterGrace: GRACE }), close: () => {} }
    },
  },
]

describe.each(stores)('$name: 100,000 keys locked once each', ({ name, open }) => {
  test('after the leases and the grace, only the locks still held and their counters remain; tokens keep rising', async () => {
    const prefix = `footprint-${name}:`
    // Opened inside the test: the REST server's URL is known only once beforeAll has run.
    const { store, close } = open(prefix)
    try {
      const held = Array.from({ length: HELD }, (_, i) => `held:${i}`)
      for (const key of held) await token(store, key, 600_000)

      const started = performance.now()
      const firstToken = await lockEachOnce(store, KEYS)
      const seconds = (performance.now() - started) / 1000
      console.log(`${name}: ${KEYS} keys locked and released in ${seconds.toFixed(1)} s`)
      // Right after the run, the counters are inside their grace: they are what the grace costs.
      const during = await keysUnder(prefix)
      expect(during).toBeGreaterThan(HELD * 2)
      expect(during).toBeLessThanOrEqual(KEYS + HELD * 2)

      await new Promise((resolve) => setTimeout(resolve, LEASE + GRACE + 1_500))
      const after = await keysUnder(prefix)
      console.log(
        `${name}: ${during} keys under the prefix right after the run, ${after} once the leases and the ${GRACE} ms grace passed`,
      )
      expect(after).toBe(HELD * 2)

      expect(await token(store, 'invoice:0', LEASE)).toBeGreaterThan(firstToken)
      for (const key of [...held, 'invoice:0']) await store.forceRelease(key)
    } finally {
      close()
    }
  })
})

test('the server holds nothing else once every lock is released and the grace has passed', async () => {
  await new Promise((resolve) => setTimeout(resolve, GRACE + 1_500))
  expect(await admin.dbsize()).toBe(0)
})
