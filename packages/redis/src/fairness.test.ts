import { commandCalls, type PrivateRedis, startPrivateRedis } from '@verrou/test-utils/redis-server'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { uniqueKey } from '../test/connections.js'
import { RedisStore } from './store.js'

/**
 * Eight workers, each with its own connection and store (as eight processes would), on one key, using
 * nothing but the store API: attempt with a place lease; if refused, sleep until the announcement naming
 * this worker or 20 ms, whichever comes first; attempt again. Hold 2 ms, release, ask again at once.
 * A private server, so INFO commandstats counts these workers' commands only.
 */
const WORKERS = 8
const RUN_MS = 2_000
const HOLD_MS = 2
const RETRY_MS = 20
const PLACE = { lease: 2_000 }
const prefix = 'verrou-test:'

let server: PrivateRedis
let admin: Redis
const connections: Redis[] = []
const stores: RedisStore[] = []

beforeAll(async () => {
  server = await startPrivateRedis()
  admin = server.connect()
  for (let i = 0; i < WORKERS; i++) {
    const connection = server.connect()
    connections.push(connection)
    stores.push(new RedisStore({ connection, prefix }))
  }
})

afterAll(async () => {
  for (const store of stores) await store.close()
  for (const connection of [admin, ...connections]) connection?.disconnect()
  await server?.dispose()
})

interface WorkerResult {
  acquisitions: number
  longestWaitMs: number
}

async function worker(store: RedisStore, key: string, owner: string, until: number, holders: { now: number; max: number }) {
  let wake: (() => void) | undefined
  let named = false
  const off = await store.subscribeToReleases(key, (next) => {
    if (next !== owner) return
    named = true
    wake?.()
  })
  const result: WorkerResult = { acquisitions: 0, longestWaitMs: 0 }
  try {
    while (performance.now() < until) {
      const askedAt = performance.now()
      for (;;) {
        named = false
        const reply = await store.acquire(key, owner, 10_000, PLACE)
        if (reply.acquired) break
        if (named) continue
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, RETRY_MS)
          wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        wake = undefined
      }
      result.longestWaitMs = Math.max(result.longestWaitMs, performance.now() - askedAt)
      holders.now += 1
      holders.max = Math.max(holders.max, holders.now)
      await new Promise((resolve) => setTimeout(resolve, HOLD_MS))
      holders.now -= 1
      if (!(await store.release(key, owner))) throw new Error(`${owner} lost the lock it held`)
      result.acquisitions += 1
    }
  } finally {
    await off()
  }
  // Leaves nothing queued behind it.
  await store.leaveQueue(key, owner)
  return result
}

test('8 workers on one key through the store API alone: nobody starves, one holder at a time', async () => {
  const key = uniqueKey('fairness')
  // Warm the scripts, then count only the run.
  await stores[0]!.acquire(key, 'warm', 1_000)
  await stores[0]!.release(key, 'warm')
  const before = await commandCalls(admin, 'evalsha')
  const publishesBefore = await commandCalls(admin, 'publish')
  const holders = { now: 0, max: 0 }
  const until = performance.now() + RUN_MS
  const results = await Promise.all(stores.map((store, i) => worker(store, key, `worker-${i}`, until, holders)))
  const scripts = (await commandCalls(admin, 'evalsha')) - before
  const publishes = (await commandCalls(admin, 'publish')) - publishesBefore

  const counts = results.map((result) => result.acquisitions)
  const total = counts.reduce((sum, count) => sum + count, 0)
  const mean = total / WORKERS
  const longest = Math.max(...results.map((result) => result.longestWaitMs))
  console.log(
    `fairness, ${WORKERS} workers, ${RUN_MS} ms: acquisitions per worker ${counts.join(', ')} (mean ${mean.toFixed(1)}); ` +
      `longest wait ${longest.toFixed(0)} ms; round trips per acquisition ${(scripts / total).toFixed(2)} ` +
      `(${scripts} scripts, acquire + release + leave); PUBLISH per acquisition ${(publishes / total).toFixed(2)}`,
  )
  expect(holders.max).toBe(1)
  expect(total).toBeGreaterThan(WORKERS)
  expect(Math.min(...counts)).toBeGreaterThanOrEqual(mean / 2)
})
