import { errors } from '@verrou/core'
import { lockKeys } from '@verrou/redis-scripts'
import { commandCalls } from '@verrou/test-utils/redis-server'
import type { UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import type { Redis as IORedis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { client, type PrivateRestServer, startPrivateRestServer, uniqueKey } from '../test/setup.js'
import { UpstashStore } from './store.js'

/**
 * The FIFO wait queue through the REST API. A private Redis behind the REST server, so that INFO
 * commandstats counts this file's commands only. Each store has its own client: separate invocations.
 */
const prefix = 'verrou-test:'
const wait = { lease: 10_000 }
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

let env: PrivateRestServer
let server: UpstashRestServer
let admin: IORedis
let stores: UpstashStore[] = []

beforeAll(async () => {
  env = await startPrivateRestServer('wait-queue-token')
  ;({ server, admin } = env)
  stores = [false, true, false, true].map(
    (enableAutoPipelining) => new UpstashStore({ connection: client(server, { enableAutoPipelining }), prefix }),
  )
})

afterAll(async () => {
  await env?.close()
})

async function token(store: UpstashStore, key: string, owner: string, lease?: number): Promise<number> {
  const result = await store.acquire(key, owner, 10_000, lease === undefined ? undefined : { lease })
  if (!result.acquired) throw new Error(`expected ${owner} to acquire, got ${JSON.stringify(result)}`)
  return result.fencingToken
}

describe('FIFO wait queue over REST', () => {
  test('join order decides, no barging, positions, tokens rising; a release publishes only while someone waits', async () => {
    const key = uniqueKey('fifo')
    const [holder, a, b, c] = stores as [UpstashStore, UpstashStore, UpstashStore, UpstashStore]
    const publishes = await commandCalls(admin, 'publish')
    const tokens = [await token(holder, key, 'h')]
    expect(await a.acquire(key, 'a', 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    expect(await b.acquire(key, 'b', 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    expect(await c.acquire(key, 'c', 10_000, wait)).toMatchObject({ acquired: false, position: 2 })
    // The release hands the lock to a (its store announces, so its place names an inbox): a leaves the
    // queue, and holds the lock until it asks. Nobody else gets it, the releaser included.
    expect(await holder.release(key, 'h')).toBe(true)
    expect(await holder.acquire(key, 'h', 10_000)).toMatchObject({ acquired: false })
    expect(await c.acquire(key, 'c', 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    tokens.push(await token(a, key, 'a', wait.lease))
    await a.release(key, 'a')
    tokens.push(await token(b, key, 'b', wait.lease))
    await b.forceRelease(key)
    tokens.push(await token(c, key, 'c', wait.lease))
    await c.release(key, 'c')
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!)
    // The release and the force release with someone queued announced the next; the last release, with
    // nobody queued, did not.
    expect((await commandCalls(admin, 'publish')) - publishes).toBe(3)
    expect(await admin.exists(lockKeys(prefix, key).queue)).toBe(0)
  })

  test('a dead place is skipped after its lease; leaveQueue lets the next go at once', async () => {
    const key = uniqueKey('dead-leave')
    const [holder, dying, b, c] = stores as [UpstashStore, UpstashStore, UpstashStore, UpstashStore]
    await token(holder, key, 'h')
    await dying.acquire(key, 'dying', 10_000, { lease: 300 })
    await b.acquire(key, 'b', 10_000, wait)
    await c.acquire(key, 'c', 10_000, wait)
    // Handed to the dying waiter: held for what is left of its place lease, then free.
    await holder.release(key, 'h')
    const refused = await b.acquire(key, 'b', 10_000, wait)
    expect(refused).toMatchObject({ acquired: false, position: 0 })
    expect(!refused.acquired && refused.expiresIn).toBeLessThanOrEqual(300)
    await sleep(350)
    expect(await c.acquire(key, 'c', 10_000, wait)).toEqual({ acquired: false, position: 1 })
    await b.leaveQueue(key, 'b')
    await token(c, key, 'c', wait.lease)
    await c.release(key, 'c')
    expect(await admin.exists(lockKeys(prefix, key).queue)).toBe(0)
  })

  test('the queue keys vanish once the place leases end', async () => {
    const key = uniqueKey('footprint')
    const [holder, a] = stores as [UpstashStore, UpstashStore]
    const { queue, queueLeases } = lockKeys(prefix, key)
    await token(holder, key, 'h')
    await a.acquire(key, 'a', 10_000, { lease: 250 })
    expect(await admin.exists(queue, queueLeases)).toBe(2)
    await sleep(350)
    expect(await admin.exists(queue, queueLeases)).toBe(0)
    await holder.release(key, 'h')
  })

  test("another application's value at a queue key is a storage error, and the lock is left alone", async () => {
    const [store] = stores as [UpstashStore]
    const key = uniqueKey('wrongtype')
    const keys = lockKeys(prefix, key)
    await admin.rpush(keys.queueLeases, 'x')
    const storage = (operation: string) => (error: unknown) =>
      error instanceof errors.E_LOCK_STORAGE_ERROR && error.operation === operation
    await expect(store.acquire(key, 'o', 10_000, wait)).rejects.toSatisfy(storage('acquire'))
    await expect(store.leaveQueue(key, 'o')).rejects.toSatisfy(storage('leave queue'))
    await admin.set(keys.lock, 'o', 'PX', 10_000)
    await expect(store.release(key, 'o')).rejects.toSatisfy(storage('release'))
    expect(await admin.get(keys.lock)).toBe('o')
    await admin.del(keys.lock, keys.queueLeases)
  })
})
