import { errors } from '@verrou/core'
import { lockKeys } from '@verrou/redis-scripts'
import { commandCalls, type PrivateRedis, startPrivateRedis } from '@verrou/test-utils/redis-server'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { connect, uniqueKey } from '../test/connections.js'
import { RedisStore } from './store.js'

const prefix = 'verrou-test:'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const wait = { lease: 10_000 }

/** Four stores on four connections: four processes. */
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

async function token(store: RedisStore, key: string, owner: string, lease?: number): Promise<number> {
  const result = await store.acquire(key, owner, 10_000, lease === undefined ? undefined : { lease })
  if (!result.acquired) throw new Error(`expected ${owner} to acquire, got ${JSON.stringify(result)}`)
  return result.fencingToken
}

describe('FIFO wait queue (store level, four connections)', () => {
  test('waiters get the lock in the order they joined, whatever order they ask in; tokens keep rising', async () => {
    const key = uniqueKey('fifo')
    const [holder, a, b, c] = stores as [RedisStore, RedisStore, RedisStore, RedisStore]
    const tokens = [await token(holder, key, 'h')]
    expect(await a.acquire(key, 'a', 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    expect(await b.acquire(key, 'b', 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    expect(await c.acquire(key, 'c', 10_000, wait)).toMatchObject({ acquired: false, position: 2 })
    // Renewing keeps the place; the holder's lease end comes with each refusal.
    const renewed = await c.acquire(key, 'c', 10_000, wait)
    expect(renewed).toMatchObject({ acquired: false, position: 2 })
    expect(!renewed.acquired && renewed.expiresIn).toBeGreaterThan(9_000)

    expect(await holder.release(key, 'h')).toBe(true)
    // The release handed the lock to a, which left the queue: the later waiters ask first, and are
    // refused, one place further up. a holds the lock for its claim window (its place lease) until it asks.
    const refusedC = await c.acquire(key, 'c', 10_000, wait)
    expect(refusedC).toMatchObject({ acquired: false, position: 1 })
    expect(!refusedC.acquired && refusedC.expiresIn).toBeLessThanOrEqual(wait.lease)
    expect(await b.acquire(key, 'b', 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    tokens.push(await token(a, key, 'a', wait.lease))
    expect(await b.acquire(key, 'b', 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    expect(await a.release(key, 'a')).toBe(true)
    expect(await c.acquire(key, 'c', 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    tokens.push(await token(b, key, 'b', wait.lease))
    expect(await b.release(key, 'b')).toBe(true)
    tokens.push(await token(c, key, 'c', wait.lease))
    expect(await c.release(key, 'c')).toBe(true)
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!)
    // Nobody is left waiting: the queue is gone at once.
    const { queue, queueLeases } = lockKeys(prefix, key)
    expect(await admin.exists(queue, queueLeases)).toBe(0)
  })

  test('no barging: neither the releaser nor a newcomer, with or without wait, jumps a live queue', async () => {
    const key = uniqueKey('barging')
    const [holder, a, newcomer] = stores as [RedisStore, RedisStore, RedisStore]
    await token(holder, key, 'h')
    expect(await a.acquire(key, 'a', 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    expect(await holder.release(key, 'h')).toBe(true)
    // The lock went straight to a: it is held, and nobody else's acquire claims it.
    expect(await holder.acquire(key, 'h', 10_000)).toMatchObject({ acquired: false })
    expect(await newcomer.acquire(key, 'n', 10_000)).toMatchObject({ acquired: false })
    expect(await newcomer.acquire(key, 'n', null)).toMatchObject({ acquired: false })
    expect(await holder.acquire(key, 'h', 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    expect(await holder.isLocked(key)).toBe(true)
    // The former holder is a stale owner now: it can neither release nor extend what it handed on.
    expect(await holder.release(key, 'h')).toBe(false)
    expect(await holder.extend(key, 'h', 10_000)).toBe(false)
    await token(a, key, 'a')
    await a.release(key, 'a')
    await token(holder, key, 'h', wait.lease)
    await holder.release(key, 'h')
  })

  test('acquire without wait leaves the queue as it is, and grants at once when nobody waits', async () => {
    const key = uniqueKey('no-wait')
    const [holder, a, other] = stores as [RedisStore, RedisStore, RedisStore]
    const { queue, queueLeases } = lockKeys(prefix, key)
    await token(holder, key, 'h')
    expect(await other.acquire(key, 'o', 10_000)).toMatchObject({ acquired: false })
    expect(await admin.exists(queue, queueLeases)).toBe(0)
    await a.acquire(key, 'a', 10_000, wait)
    expect(await other.acquire(key, 'o', 10_000)).toMatchObject({ acquired: false })
    expect(await admin.zrange(queue, '0', '-1')).toEqual(['a'])
    expect(await a.leaveQueue(key, 'a')).toBeUndefined()
    await holder.release(key, 'h')
    await token(other, key, 'o')
    await other.release(key, 'o')
  })

  test('a dead place (lease not renewed) is skipped: the next waiter is delayed by its remaining lease only', async () => {
    const key = uniqueKey('dead')
    const [holder, dying, b, c] = stores as [RedisStore, RedisStore, RedisStore, RedisStore]
    await token(holder, key, 'h')
    expect(await dying.acquire(key, 'dying', 10_000, { lease: 300 })).toMatchObject({ position: 0 })
    expect(await b.acquire(key, 'b', 10_000, wait)).toMatchObject({ position: 1 })
    // Handed to the dying waiter, the lock is held for what is left of its place lease, not the ttl.
    expect(await holder.release(key, 'h')).toBe(true)
    const refused = await b.acquire(key, 'b', 10_000, wait)
    expect(refused).toMatchObject({ acquired: false, position: 0 })
    expect(!refused.acquired && refused.expiresIn).toBeLessThanOrEqual(300)
    const refusedAt = performance.now()
    await sleep(350)
    // A waiter that joined behind the dead one is now second, not third.
    expect(await c.acquire(key, 'c', 10_000, wait)).toEqual({ acquired: false, position: 1 })
    await token(b, key, 'b', wait.lease)
    expect(performance.now() - refusedAt).toBeLessThan(2_000)
    expect(await admin.zrange(lockKeys(prefix, key).queue, '0', '-1')).toEqual(['c'])
    await b.release(key, 'b')
    await token(c, key, 'c', wait.lease)
    await c.release(key, 'c')
  })

  test('leaveQueue: the next waiter may take a free lock at once and is told so; it is idempotent', async () => {
    const key = uniqueKey('leave')
    const [holder, a, b, listening] = stores as [RedisStore, RedisStore, RedisStore, RedisStore]
    // Each waiter is told on its own store; a store with nobody in the queue is told nothing.
    const heard = { a: [] as (string | undefined)[], b: [] as (string | undefined)[], listening: [] as (string | undefined)[] }
    const offs = [
      await a.subscribeToReleases(key, (next) => heard.a.push(next)),
      await b.subscribeToReleases(key, (next) => heard.b.push(next)),
      await listening.subscribeToReleases(key, (next) => heard.listening.push(next)),
    ]
    try {
      await token(holder, key, 'h')
      await a.acquire(key, 'a', 10_000, wait)
      await b.acquire(key, 'b', 10_000, wait)
      // Leaving from the middle, or while the lock is held, announces nothing.
      await b.leaveQueue(key, 'b')
      await b.acquire(key, 'b', 10_000, wait)
      await a.leaveQueue(key, 'a')
      await a.acquire(key, 'a', 10_000, wait)
      await sleep(100)
      expect(heard).toEqual({ a: [], b: [], listening: [] })
      // The lock is handed to b (first now), and b is told; b gives up before claiming it: the grant goes
      // on to a, which is told next and gets it.
      await holder.release(key, 'h')
      await until(() => heard.b.length === 1)
      expect(await a.acquire(key, 'a', 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
      await b.leaveQueue(key, 'b')
      await b.leaveQueue(key, 'b')
      await until(() => heard.a.length === 1)
      expect(heard).toEqual({ a: ['a'], b: ['b'], listening: [] })
      await token(a, key, 'a', wait.lease)
      await a.release(key, 'a')
      await sleep(100)
      expect(heard).toEqual({ a: ['a'], b: ['b'], listening: [] })
      await holder.leaveQueue(uniqueKey('never-queued'), 'x')
    } finally {
      for (const off of offs) await off()
    }
  })

  test('release and force release tell exactly the first live waiter, by owner id, on its own store only', async () => {
    const key = uniqueKey('announce')
    const [holder, a, b, listening] = stores as [RedisStore, RedisStore, RedisStore, RedisStore]
    const heardA: (string | undefined)[] = []
    const heardB: (string | undefined)[] = []
    const heardElsewhere: (string | undefined)[] = []
    const offs = [
      await a.subscribeToReleases(key, (next) => heardA.push(next)),
      await b.subscribeToReleases(key, (next) => heardB.push(next)),
      await listening.subscribeToReleases(key, (next) => heardElsewhere.push(next)),
    ]
    try {
      await token(holder, key, 'h')
      await a.acquire(key, 'a', 10_000, { lease: 300 })
      await b.acquire(key, 'b', 10_000, wait)
      await holder.release(key, 'h')
      await until(() => heardA.length === 1)
      // a never claims the lock handed to it: after its place lease b is first, and a newcomer still
      // cannot barge.
      await sleep(350)
      expect(await holder.acquire(key, 'x', 10_000)).toEqual({ acquired: false })
      await token(b, key, 'b', wait.lease)
      await a.acquire(key, 'a', 10_000, wait)
      // A force release names the waiter just the same.
      await holder.forceRelease(key)
      await until(() => heardA.length === 2)
      expect([heardA, heardB, heardElsewhere]).toEqual([['a', 'a'], [], []])
      await token(a, key, 'a', wait.lease)
      await a.release(key, 'a')
    } finally {
      for (const off of offs) await off()
    }
  })

  test('a waiter queued by a store that keeps no inbox (another client) is told on the key channel', async () => {
    const key = uniqueKey('no-inbox')
    const [holder, a] = stores as [RedisStore, RedisStore]
    const { lock, fence, queue, queueLeases, queueInboxes, channel } = lockKeys(prefix, key)
    await token(holder, key, 'h')
    // The acquire script as a store with no inbox sends it (Upstash's, say): the last argument is empty.
    const { ACQUIRE_SCRIPT } = await import('@verrou/redis-scripts')
    const joinWithoutInbox = () =>
      admin.eval(ACQUIRE_SCRIPT, 5, lock, fence, queue, queueLeases, queueInboxes, 'w', '10000', '3600000', '10000', '')
    await joinWithoutInbox()
    expect(await admin.hlen(queueInboxes)).toBe(0)
    // Renewed through our store, the place records its inbox; renewed again without one, it forgets it.
    expect(await a.acquire(key, 'w', 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    expect(await admin.hget(queueInboxes, 'w')).toMatch(/^verrou:heir:/)
    await joinWithoutInbox()
    expect(await admin.hlen(queueInboxes)).toBe(0)
    const listener = connect()
    const heard: string[] = []
    listener.on('message', (_channel: string, message: string) => heard.push(message))
    await listener.subscribe(channel)
    try {
      await holder.release(key, 'h')
      await until(() => heard.length === 1)
      expect(heard).toEqual(['w'])
      await a.leaveQueue(key, 'w')
      expect(await admin.exists(queue, queueLeases, queueInboxes)).toBe(0)
    } finally {
      await listener.quit()
    }
  })

  test('the queue keys vanish once every place lease has ended, and never outlive the longest lease', async () => {
    const key = uniqueKey('footprint')
    const [holder, a, b] = stores as [RedisStore, RedisStore, RedisStore]
    const { lock, queue, queueLeases, queueInboxes } = lockKeys(prefix, key)
    await token(holder, key, 'h')
    await a.acquire(key, 'a', 10_000, { lease: 200 })
    await b.acquire(key, 'b', 10_000, { lease: 400 })
    expect(await admin.pttl(queue)).toBeLessThanOrEqual(400)
    expect(await admin.pttl(queueLeases)).toBeGreaterThan(200)
    expect(await admin.pttl(queueInboxes)).toBeGreaterThan(200)
    expect(await admin.pttl(queueInboxes)).toBeLessThanOrEqual(400)
    await sleep(450)
    expect(await admin.exists(queue, queueLeases, queueInboxes)).toBe(0)
    await holder.release(key, 'h')
    expect(await admin.exists(lock)).toBe(0)
  })

  test("another application's value at a queue key: a storage error for every operation, nothing changed", async () => {
    const [store] = stores as [RedisStore]
    for (const [which, write] of [
      ['queue', (name: string) => admin.set(name, 'x')],
      ['queueLeases', (name: string) => admin.hset(name, 'f', 'v')],
    ] as const) {
      const key = uniqueKey(`wrongtype-${which}`)
      const keys = lockKeys(prefix, key)
      await write(keys[which])
      const storage = (operation: string) => (error: unknown) =>
        error instanceof errors.E_LOCK_STORAGE_ERROR && error.operation === operation && /WRONGTYPE/.test(String(error.cause))
      await expect(store.acquire(key, 'o', 10_000)).rejects.toSatisfy(storage('acquire'))
      await expect(store.acquire(key, 'o', 10_000, wait)).rejects.toSatisfy(storage('acquire'))
      await expect(store.leaveQueue(key, 'o')).rejects.toSatisfy(storage('leave queue'))
      expect(await admin.exists(keys.lock, keys.fence)).toBe(0)
      // Held through a back door: release and force release must fail and leave the holder alone.
      await admin.set(keys.lock, 'o', 'PX', 10_000)
      await expect(store.release(key, 'o')).rejects.toSatisfy(storage('release'))
      await expect(store.forceRelease(key)).rejects.toSatisfy(storage('force release'))
      expect(await admin.get(keys.lock)).toBe('o')
      await admin.del(keys.lock, keys[which])
    }
  })

  test("another application's value at the queue inboxes key: joining fails with a storage error, nothing changed", async () => {
    const [holder, store] = stores as [RedisStore, RedisStore]
    const key = uniqueKey('wrongtype-inboxes')
    const keys = lockKeys(prefix, key)
    await admin.set(keys.queueInboxes, 'x')
    await token(holder, key, 'h')
    await expect(store.acquire(key, 'o', 10_000, wait)).rejects.toSatisfy(
      (error: unknown) => error instanceof errors.E_LOCK_STORAGE_ERROR && /WRONGTYPE/.test(String(error.cause)),
    )
    expect(await admin.exists(keys.queue, keys.queueLeases)).toBe(0)
    expect(await admin.get(keys.queueInboxes)).toBe('x')
    await holder.release(key, 'h')
    await admin.del(keys.queueInboxes)
  })

  test('a place lease that is not a positive whole number is refused before anything reaches Redis', async () => {
    const [store] = stores as [RedisStore]
    const key = uniqueKey('bad-lease')
    for (const lease of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '100'])
      await expect(store.acquire(key, 'o', 10_000, { lease: lease as number })).rejects.toThrow(errors.E_INVALID_ARGUMENT)
    expect(await admin.exists(lockKeys(prefix, key).lock)).toBe(0)
  })
})

describe('what is published (private server, INFO commandstats)', () => {
  let server: PrivateRedis
  let own: Redis
  let store: RedisStore
  let waiter: RedisStore
  const ownConnections: Redis[] = []

  beforeAll(async () => {
    server = await startPrivateRedis()
    own = server.connect()
    ownConnections.push(own, server.connect(), server.connect())
    store = new RedisStore({ connection: ownConnections[1]!, prefix })
    waiter = new RedisStore({ connection: ownConnections[2]!, prefix })
  })

  afterAll(async () => {
    await store?.close()
    await waiter?.close()
    for (const connection of ownConnections) connection.disconnect()
    await server?.dispose()
  })

  test('a release with nobody waiting publishes nothing; with a waiter, exactly one PUBLISH', async () => {
    const key = uniqueKey('publish-count')
    const publishes = () => commandCalls(own, 'publish')
    const before = await publishes()
    for (let i = 0; i < 5; i++) {
      await token(store, key, 'o')
      await store.release(key, 'o')
      await token(store, key, 'o')
      await store.forceRelease(key)
    }
    expect(await publishes()).toBe(before)
    await token(store, key, 'o')
    await waiter.acquire(key, 'w', 10_000, wait)
    await store.release(key, 'o')
    expect(await publishes()).toBe(before + 1)
    await token(waiter, key, 'w', wait.lease)
    await waiter.release(key, 'w')
    expect(await publishes()).toBe(before + 1)
  })
})

async function until(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 5_000
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('timed out')
    await sleep(5)
  }
}
