import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { LockFactory } from '@verrou/core'
import { lockKeys, RELEASE_SCRIPT } from '@verrou/redis-scripts'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { connect, uniqueKey } from '../test/connections.js'
import { RedisStore } from './store.js'

const run = promisify(execFile)
const prefix = 'verrou-test:'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Holder and waiter each get their own connection and store: two processes. */
let admin: Redis
let holderConnection: Redis
let waiterConnection: Redis
let holderStore: RedisStore
let waiterStore: RedisStore
const waiterName = uniqueKey('verrou-waiter').replaceAll(':', '-')

beforeAll(() => {
  admin = connect()
  holderConnection = connect()
  waiterConnection = connect({ connectionName: waiterName })
  holderStore = new RedisStore({ connection: holderConnection, prefix })
  waiterStore = new RedisStore({ connection: waiterConnection, prefix })
})

afterAll(async () => {
  await holderStore.close()
  await waiterStore.close()
  await Promise.all([admin.quit(), holderConnection.quit(), waiterConnection.quit()])
})

async function subscriberCount(channel: string): Promise<number> {
  const reply = (await admin.pubsub('NUMSUB', channel)) as [string, number]
  return Number(reply[1])
}

/**
 * The connections a store opened itself, with how many channels each is subscribed to: they inherit the
 * name of the store's connection, whose own id is left out. (Not TYPE pubsub: a connection with no channel
 * left is "normal".)
 */
async function subscribersOf(connection: Redis, name: string): Promise<{ id: string; channels: number }[]> {
  const own = String(await connection.call('CLIENT', 'ID'))
  const list = String(await admin.call('CLIENT', 'LIST'))
  return list
    .split('\n')
    .filter((line) => line.includes(` name=${name} `))
    .map((line) => ({ id: /id=(\d+)/.exec(line)?.[1] ?? '', channels: Number(/ sub=(\d+)/.exec(line)?.[1]) }))
    .filter(({ id }) => id !== own)
}

const waiterSubscribers = () => subscribersOf(waiterConnection, waiterName)

/** The inbox `owner`'s store recorded with its place in the queue of `key`. */
async function inboxOf(key: string, owner: string): Promise<string | null> {
  return admin.hget(lockKeys(prefix, key).queueInboxes, owner)
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + 5_000
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

describe('release notifications (pub/sub)', () => {
  test('a waiter on another store gets the lock within ms of a release, despite a 5 s retry delay', async () => {
    const key = uniqueKey('wake')
    const holder = new LockFactory(holderStore).createLock(key, '30s')
    expect(await holder.acquire()).toBe(true)
    const waiter = new LockFactory(waiterStore).createLock(key, '30s')
    const waiting = waiter.acquire({ retry: { delay: '5s', timeout: '20s' } })
    // The waiter's place names its store's inbox, and that store listens on it.
    await until(async () => (await inboxOf(key, waiter.getOwner())) !== null, 'the waiter to queue')
    const inbox = (await inboxOf(key, waiter.getOwner()))!
    await until(async () => (await subscriberCount(inbox)) === 1, 'the waiter to subscribe')
    await sleep(50)
    const releasedAt = performance.now()
    await holder.release()
    expect(await waiting).toBe(true)
    expect(performance.now() - releasedAt).toBeLessThan(1_000)
    expect(waiter.fencingToken).toBeGreaterThan(holder.fencingToken!)

    // A force release wakes the next waiter just the same.
    const next = new LockFactory(holderStore).createLock(key, '30s')
    const nextWaiting = next.acquire({ retry: { delay: '5s', timeout: '20s' } })
    await until(async () => (await inboxOf(key, next.getOwner())) !== null, 'the second waiter to queue')
    await until(async () => (await subscriberCount((await inboxOf(key, next.getOwner()))!)) === 1, 'it to subscribe')
    await sleep(50)
    const forcedAt = performance.now()
    await waiter.forceRelease()
    expect(await nextWaiting).toBe(true)
    expect(performance.now() - forcedAt).toBeLessThan(1_000)
    await next.release()
  })

  test('with an ioredis keyPrefix on the connections, notifications still arrive', async () => {
    const holderPrefixed = connect({ keyPrefix: 'app:' })
    const waiterPrefixed = connect({ keyPrefix: 'app:' })
    const holding = new RedisStore({ connection: holderPrefixed, prefix })
    const waiting = new RedisStore({ connection: waiterPrefixed, prefix })
    try {
      const key = uniqueKey('key-prefix')
      const holder = new LockFactory(holding).createLock(key, '30s')
      await holder.acquire()
      const waiter = new LockFactory(waiting).createLock(key, '30s')
      const acquired = waiter.acquire({ retry: { delay: '5s', timeout: '20s' } })
      await sleep(200)
      const releasedAt = performance.now()
      await holder.release()
      expect(await acquired).toBe(true)
      expect(performance.now() - releasedAt).toBeLessThan(1_000)
      await waiter.release()
    } finally {
      await holding.close()
      await waiting.close()
      await Promise.all([holderPrefixed.quit(), waiterPrefixed.quit()])
    }
  })

  test('one subscriber connection and one inbox serve every key; a release wakes only the store of the waiter', async () => {
    const [a, b] = [uniqueKey('shared-a'), uniqueKey('shared-b')]
    const calls = { a1: 0, a2: 0, b: 0, bystander: 0 }
    const offA1 = await waiterStore.subscribeToReleases(a, () => calls.a1++)
    const offA2 = await waiterStore.subscribeToReleases(a, () => calls.a2++)
    const offB = await waiterStore.subscribeToReleases(b, () => calls.b++)
    // (An idle subscriber from an earlier test may take a moment to leave the server's list.)
    await until(async () => (await waiterSubscribers()).length === 1, 'a single subscriber connection')
    // One channel for all keys: the inbox. No channel per key.
    expect((await waiterSubscribers())[0]?.channels).toBe(1)
    expect(await subscriberCount(lockKeys(prefix, a).channel)).toBe(0)
    // Another store (another process) listening on a, with no waiter of its own in the queue.
    const bystanderConnection = connect()
    const bystander = new RedisStore({ connection: bystanderConnection, prefix })
    const offBystander = await bystander.subscribeToReleases(a, () => calls.bystander++)

    // Releases are announced while someone waits in the queue, to the store that queued it.
    const place = { lease: 10_000 }
    await holderStore.acquire(a, 'o', 10_000)
    await waiterStore.acquire(a, 'w', 10_000, place)
    await holderStore.release(a, 'o')
    await until(async () => calls.a1 === 1 && calls.a2 === 1, 'both listeners of a')
    expect(calls.b).toBe(0)
    await waiterStore.leaveQueue(a, 'w')

    // A release that did not happen (wrong owner) announces nothing.
    await holderStore.acquire(b, 'o', 10_000)
    await waiterStore.acquire(b, 'w', 10_000, place)
    expect(await holderStore.release(b, 'intruder')).toBe(false)
    await sleep(50)
    expect(calls.b).toBe(0)
    await holderStore.forceRelease(b)
    await until(async () => calls.b === 1, 'the listener of b')
    await waiterStore.leaveQueue(b, 'w')
    // The bystander's process was never woken.
    await sleep(50)
    expect(calls.bystander).toBe(0)
    await offBystander()
    await bystander.close()
    await bystanderConnection.quit()

    await offA1()
    await offA2()
    await offA2()
    await offB()
    // Listeners gone, nothing reaches them; the inbox stays until the connection closes for idleness.
    await holderStore.acquire(a, 'o', 10_000)
    await waiterStore.acquire(a, 'w', 10_000, place)
    await holderStore.release(a, 'o')
    await sleep(50)
    expect(calls).toEqual({ a1: 1, a2: 1, b: 1, bystander: 0 })
    await waiterStore.leaveQueue(a, 'w')
  })

  test('once the inbox listens, a subscription reports since when it hears (the conformance suite checks the replay)', async () => {
    const offWarm = await waiterStore.subscribeToReleases(uniqueKey('warm'), () => {})
    const listening = performance.now()
    const off = await waiterStore.subscribeToReleases(uniqueKey('fresh'), () => {})
    expect(off.heardSince).toBeLessThanOrEqual(listening)
    await off()
    await offWarm()
  })

  test('a lost notification (subscriber killed) still lets the waiter acquire within its retry delay', async () => {
    const key = uniqueKey('lost')
    const other = uniqueKey('resubscribed')
    let otherCalls = 0
    const offOther = await waiterStore.subscribeToReleases(other, () => otherCalls++)

    const holder = new LockFactory(holderStore).createLock(key, '30s')
    await holder.acquire()
    const waiter = new LockFactory(waiterStore).createLock(key, '30s')
    const retryDelay = 400
    const waiting = waiter.acquire({ retry: { delay: retryDelay, timeout: '20s' } })
    await until(async () => (await inboxOf(key, waiter.getOwner())) !== null, 'the waiter to queue')
    const inbox = (await inboxOf(key, waiter.getOwner()))!
    await until(async () => (await subscriberCount(inbox)) === 1, 'the waiter to subscribe')

    const [subscriber] = await waiterSubscribers()
    expect(subscriber?.id).toBeTruthy()
    // Kill, check nobody listens, and release with the store's own script, in one pipeline: Redis runs
    // the three back to back, so the subscriber cannot reconnect in between and the announcement is lost.
    const { lock, fence, queue, queueLeases, queueInboxes, channel } = lockKeys(prefix, key)
    const releasedAt = performance.now()
    const replies = await admin
      .pipeline()
      .call('CLIENT', 'KILL', 'ID', subscriber!.id)
      .pubsub('NUMSUB', inbox)
      .eval(RELEASE_SCRIPT, 5, lock, fence, queue, queueLeases, queueInboxes, holder.getOwner(), channel, '3600000')
      .exec()
    expect(replies?.map(([error]) => error)).toEqual([null, null, null])
    expect(replies?.[1]?.[1]).toEqual([inbox, 0])
    expect(replies?.[2]?.[1]).toBe(1)
    expect(await waiting).toBe(true)
    expect(performance.now() - releasedAt).toBeLessThan(retryDelay + 600)
    await waiter.release()

    // The subscriber reconnects and subscribes again to what was still wanted: the inbox.
    await until(async () => (await subscriberCount(inbox)) === 1, 'the subscriber to come back')
    await holderStore.acquire(other, 'o', 10_000)
    await waiterStore.acquire(other, 'w', 10_000, { lease: 1_000 })
    await holderStore.release(other, 'o')
    await until(async () => otherCalls === 1, 'a notification after the reconnect')
    // It may have missed announcements while it reconnected: it vouches for none.
    const afterDrop = await waiterStore.subscribeToReleases(uniqueKey('after-drop'), () => {})
    expect(afterDrop.heardSince).toBeUndefined()
    await afterDrop()
    await offOther()
  })

  test('the subscriber connection closes itself soon after the last subscription ends', async () => {
    const key = uniqueKey('idle')
    const off = await waiterStore.subscribeToReleases(key, () => {})
    expect(await waiterSubscribers()).toHaveLength(1)
    await off()
    await until(async () => (await waiterSubscribers()).length === 0, 'the idle subscriber to close')
    // And the next wait opens a new one, subscribed to the inbox again.
    const again = await waiterStore.subscribeToReleases(key, () => {})
    expect(await waiterSubscribers()).toMatchObject([{ channels: 1 }])
    await again()
  })

  test('a process that forgets close() still exits', async () => {
    const script = fileURLToPath(new URL('../test/forgotten_close.ts', import.meta.url))
    const started = performance.now()
    const { stdout } = await run(process.execPath, ['--import', 'tsx', script], { timeout: 15_000 })
    expect(stdout.trim()).toBe('done')
    // It lives on only for the subscriber's idle linger (2 s) after its work is done.
    expect(performance.now() - started).toBeLessThan(10_000)
  })

  test('close() ends the subscriber connection and nothing else', async () => {
    const name = `${waiterName}-close`
    const connection = connect({ connectionName: name })
    const store = new RedisStore({ connection, prefix })
    const key = uniqueKey('close')
    await store.subscribeToReleases(key, () => {})
    expect(await subscribersOf(connection, name)).toMatchObject([{ channels: 1 }])
    await store.close()
    await until(async () => (await subscribersOf(connection, name)).length === 0, 'the subscriber to go')
    expect(connection.status).toBe('ready')
    expect(await connection.ping()).toBe('PONG')
    await connection.quit()
  })
})

describe('the inbox subscription after a failure', () => {
  test('a SUBSCRIBE that failed while Redis was down is tried again once it is back', async () => {
    const { startPrivateRedis } = await import('@verrou/test-utils/redis-server')
    const privateRedis = await startPrivateRedis()
    // No retries: a command queued while the server is down fails at the first failed reconnect.
    const connection = privateRedis.connect()
    connection.options.maxRetriesPerRequest = 0
    const store = new RedisStore({ connection, prefix })
    try {
      await connection.ping()
      await privateRedis.server.kill()
      await expect(store.subscribeToReleases(uniqueKey('down'), () => {})).rejects.toThrow()
      await privateRedis.server.start()
      await until(async () => (await connection.ping().catch(() => '')) === 'PONG', 'the server to be back')
      // Within the subscriber's idle linger (2 s), so only forgetting the failed SUBSCRIBE makes this work.
      const off = await store.subscribeToReleases(uniqueKey('back'), () => {})
      await off()
    } finally {
      await store.close()
      connection.disconnect()
      await privateRedis.dispose()
    }
  })
})
