import { LockFactory } from '@verrou/core'
import { lockKeys } from '@verrou/redis-scripts'
import { commandCalls, type PrivateRedis } from '@verrou/test-utils/redis-server'
import { startUpstashRestServer, type UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import type { Redis as IORedis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { client, type PrivateRestServer, startPrivateRestServer, uniqueKey } from '../test/setup.js'
import { announcedOwner } from './release_subscriptions.js'
import { type UpstashConnection, UpstashStore } from './store.js'
import { streamChannel } from './stream_channel.js'

/**
 * Release announcements over the REST API's event streams (`redis.subscribe`). A private Redis behind the
 * REST server, so that INFO commandstats counts this file's PUBLISHes only. Each store has its own client,
 * as separate processes or function invocations would.
 */
const prefix = 'verrou-test:'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
/** Far longer than any wake-up below: a waiter that gets the lock sooner was told, it did not poll. */
const slowRetry = { retry: { delay: '5s', timeout: '20s' } } as const
/**
 * A listening waiter still renews its place every 667 ms (a third of its place lease), which would also
 * find the lock free: each release below comes at most 250 ms into that pause, so a waiter that was not
 * told gets the lock more than 400 ms after it, and one that was told within a few ms.
 */
const WAKE_BOUND_MS = 300

let env: PrivateRestServer
let redis: PrivateRedis
let server: UpstashRestServer
let admin: IORedis
const stores: UpstashStore[] = []

function newStore(connection: UpstashConnection = client(server), options: { releaseNotifications?: boolean } = {}) {
  const store = new UpstashStore({ connection, prefix, ...options })
  stores.push(store)
  return store
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + 5_000
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** Settles to 'pending' if `promise` has not settled within `ms`. */
function stateAfter(promise: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([promise, sleep(ms).then(() => 'pending')])
}

beforeAll(async () => {
  env = await startPrivateRestServer('notifications-token')
  ;({ redis, server, admin } = env)
})

afterAll(async () => {
  for (const store of stores) await store.close()
  await env?.close()
})

describe('release notifications over event streams', () => {
  test('the next waiter, on another client, gets the lock within ms of a release or a force release', async () => {
    const key = uniqueKey('wake')
    const holder = new LockFactory(newStore()).createLock(key, '30s')
    expect(await holder.acquire()).toBe(true)
    const waiter = new LockFactory(newStore()).createLock(key, '30s')
    const waiting = waiter.acquire(slowRetry)
    await until(() => server.openStreams() === 1, 'the waiter to subscribe')
    await sleep(50)
    const releasedAt = performance.now()
    await holder.release()
    expect(await waiting).toBe(true)
    expect(performance.now() - releasedAt).toBeLessThan(WAKE_BOUND_MS)
    expect(waiter.fencingToken).toBeGreaterThan(holder.fencingToken!)

    const next = new LockFactory(newStore()).createLock(key, '30s')
    const nextWaiting = next.acquire(slowRetry)
    await sleep(200)
    const forcedAt = performance.now()
    await waiter.forceRelease()
    expect(await nextWaiting).toBe(true)
    expect(performance.now() - forcedAt).toBeLessThan(WAKE_BOUND_MS)
    await next.release()
  })

  test('a release wakes the longest waiter only: the others stay asleep, and each release publishes once', async () => {
    const key = uniqueKey('head-only')
    const holder = new LockFactory(newStore()).createLock(key, '30s')
    await holder.acquire()
    const publishes = await commandCalls(admin, 'publish')
    const waiters = [0, 1, 2].map(() => new LockFactory(newStore()).createLock(key, '30s'))
    const order: number[] = []
    const results: Promise<boolean>[] = []
    for (const [index, waiter] of waiters.entries()) {
      results.push(
        waiter.acquire(slowRetry).then((acquired) => {
          order.push(index)
          return acquired
        }),
      )
      // One after another, so the queue order is known.
      await until(async () => (await admin.zcard(lockKeys(prefix, key).queue)) === index + 1, `waiter ${index} to queue`)
    }
    await holder.release()
    expect(await results[0]).toBe(true)
    expect(await stateAfter(results[1]!, 300)).toBe('pending')
    expect(await stateAfter(results[2]!, 0)).toBe('pending')
    await waiters[0]!.release()
    expect(await results[1]).toBe(true)
    await waiters[1]!.release()
    expect(await results[2]).toBe(true)
    await waiters[2]!.release()
    expect(order).toEqual([0, 1, 2])
    // Three releases with someone waiting, one with nobody: three announcements.
    expect((await commandCalls(admin, 'publish')) - publishes).toBe(3)
  })

  test('semaphores announce their releases the same way', async () => {
    const key = uniqueKey('semaphore')
    const first = new LockFactory(newStore()).createSemaphore(key, { limit: 1, ttl: '30s' })
    expect(await first.acquire()).toBe(true)
    const second = new LockFactory(newStore()).createSemaphore(key, { limit: 1, ttl: '30s' })
    const waiting = second.acquire(slowRetry)
    await sleep(200)
    const releasedAt = performance.now()
    await first.release()
    expect(await waiting).toBe(true)
    expect(performance.now() - releasedAt).toBeLessThan(WAKE_BOUND_MS)
    await second.release()
  })

  test('keys with URL and event-stream syntax in them (/ ? # % , space) and numeric-looking owners still wake their waiter', async () => {
    // The client puts the channel into the request path as it is: the store's channels must survive that.
    for (const [label, owner] of [
      ['jobs/2026/report?x=1#top', undefined],
      ['100% done, really', '0042'],
    ] as const) {
      const key = uniqueKey(label)
      const holder = new LockFactory(newStore()).createLock(key, '30s')
      await holder.acquire()
      const waiter = new LockFactory(newStore()).createLock(key, '30s', owner === undefined ? {} : { owner })
      const waiting = waiter.acquire(slowRetry)
      await sleep(200)
      const releasedAt = performance.now()
      await holder.release()
      expect(await waiting).toBe(true)
      expect(performance.now() - releasedAt).toBeLessThan(WAKE_BOUND_MS)
      await waiter.release()
    }
  })

  test('stream channels are letters and digits, the same for the same key and apart for others', () => {
    const channels = ['verrou:{a/b}:released', 'verrou:{a/c}:released', 'verrou:{a,b}:released', 'p/x?:{k}:released', '']
    for (const channel of channels) expect(streamChannel(channel)).toMatch(/^verrou-released:[0-9a-f]{16}$/)
    expect(streamChannel(channels[0]!)).toBe(streamChannel(channels[0]!))
    expect(new Set(channels.map(streamChannel)).size).toBe(channels.length)
    const many = new Set(Array.from({ length: 20_000 }, (_, index) => streamChannel(`verrou:{job:${index}}:released`)))
    expect(many.size).toBe(20_000)
  })

  test('what the client hands over names the right owner, or nobody when it cannot be told', () => {
    expect(announcedOwner('verrou-released:0a', 'verrou-released:0a', 'owner-1')).toBe('owner-1')
    // "0042" arrives as the number 42: it could be "42" as well, so it names nobody.
    expect(announcedOwner('c', 'c', 42)).toBeUndefined()
    expect(announcedOwner('c', 'c', '')).toBeUndefined()
    expect(announcedOwner('c', 'other', 'owner')).toBeUndefined()
  })

  test('without subscribe on the client, or with releaseNotifications: false, nothing is published and waiters poll', async () => {
    const upstash = client(server)
    const bare: UpstashConnection = {
      eval: upstash.eval.bind(upstash),
      evalsha: upstash.evalsha.bind(upstash),
      exists: upstash.exists.bind(upstash),
    }
    for (const silent of [newStore(bare), newStore(client(server), { releaseNotifications: false })]) {
      expect(silent.subscribeToReleases).toBeUndefined()
      expect(silent.shared.subscribeToReleases).toBeUndefined()
      const key = uniqueKey('silent')
      const publishes = await commandCalls(admin, 'publish')
      const holder = new LockFactory(silent).createLock(key, '30s')
      await holder.acquire()
      const waiter = new LockFactory(silent).createLock(key, '30s')
      const waiting = waiter.acquire({ retry: { delay: 20, timeout: '20s' } })
      await sleep(100)
      await holder.release()
      expect(await waiting).toBe(true)
      await waiter.release()
      expect(await commandCalls(admin, 'publish')).toBe(publishes)
    }
    expect(() => new UpstashStore({ connection: client(server), releaseNotifications: 'yes' as unknown as boolean })).toThrow(
      /releaseNotifications must be a boolean/,
    )
  })

  test('an event stream that cannot open is a storage error for the subscription, and the waiter polls on', async () => {
    const dead = await startUpstashRestServer({ redisUrl: redis.url, token: 'dead-token' })
    await dead.close()
    const upstash = client(server)
    const deadStreams = client(dead, { retry: false })
    const broken: UpstashConnection = {
      eval: upstash.eval.bind(upstash),
      evalsha: upstash.evalsha.bind(upstash),
      exists: upstash.exists.bind(upstash),
      subscribe: (channels) => deadStreams.subscribe(channels),
    }
    const store = newStore(broken)
    const key = uniqueKey('broken-stream')
    await expect(store.subscribeToReleases!(key, () => {})).rejects.toMatchObject({
      code: 'E_LOCK_STORAGE_ERROR',
      operation: 'subscribe to releases of',
    })
    const holder = new LockFactory(newStore()).createLock(key, '30s')
    await holder.acquire()
    const waiter = new LockFactory(store).createLock(key, '30s')
    const waiting = waiter.acquire({ retry: { delay: 50, timeout: '20s' } })
    await sleep(100)
    await holder.release()
    expect(await waiting).toBe(true)
    await waiter.release()
  })

  test('a stream dropped by the server loses no hand-over: the waiter still finds the freed lock by renewing its place', async () => {
    const key = uniqueKey('dropped-stream')
    const holder = new LockFactory(newStore()).createLock(key, '30s')
    await holder.acquire()
    const store = newStore()
    const waiter = new LockFactory(store).createLock(key, '30s')
    const waiting = waiter.acquire(slowRetry)
    await until(() => server.openStreams() > 0, 'the waiter to subscribe')
    server.dropStreams()
    await until(() => server.openStreams() === 0, 'the streams to end')
    await holder.release()
    // Nothing announces it any more, but the waiter renews its place every 667 ms and is granted then.
    expect(await stateAfter(waiting, 3_000)).toBe(true)
    await waiter.release()
  })

  test('close() ends the event streams the store opened', async () => {
    const store = newStore()
    const before = server.openStreams()
    await store.subscribeToReleases!(uniqueKey('close-a'), () => {})
    await store.subscribeToReleases!(uniqueKey('close-b'), () => {})
    expect(server.openStreams()).toBe(before + 2)
    await store.close()
    await until(() => server.openStreams() === before, 'the streams to end')
  })
})
