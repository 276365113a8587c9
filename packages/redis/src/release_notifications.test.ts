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

async function subscriberCount(key: string): Promise<number> {
  const reply = (await admin.pubsub('NUMSUB', lockKeys(prefix, key).channel)) as [string, number]
  return Number(reply[1])
}

/**
 * Ids of the connections the waiter's store opened itself: they inherit the name of the waiter's
 * connection, whose own id is left out. (Not TYPE pubsub: a connection with no channel left is "normal".)
 */
async function waiterSubscriberIds(): Promise<string[]> {
  const own = String(await waiterConnection.call('CLIENT', 'ID'))
  const list = String(await admin.call('CLIENT', 'LIST'))
  return list
    .split('\n')
    .filter((line) => line.includes(` name=${waiterName} `))
    .map((line) => /id=(\d+)/.exec(line)?.[1] ?? '')
    .filter((id) => id !== own)
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
    await until(async () => (await subscriberCount(key)) === 1, 'the waiter to subscribe')
    await sleep(50)
    const releasedAt = performance.now()
    await holder.release()
    expect(await waiting).toBe(true)
    expect(performance.now() - releasedAt).toBeLessThan(1_000)
    expect(waiter.fencingToken).toBeGreaterThan(holder.fencingToken!)

    // A force release wakes the next waiter just the same.
    const next = new LockFactory(holderStore).createLock(key, '30s')
    const nextWaiting = next.acquire({ retry: { delay: '5s', timeout: '20s' } })
    await until(async () => (await subscriberCount(key)) === 1, 'the second waiter to subscribe')
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

  test('one subscriber connection serves every key; each key is subscribed once and counted by listeners', async () => {
    const [a, b] = [uniqueKey('shared-a'), uniqueKey('shared-b')]
    const calls = { a1: 0, a2: 0, b: 0 }
    const offA1 = await waiterStore.subscribeToReleases(a, () => calls.a1++)
    const offA2 = await waiterStore.subscribeToReleases(a, () => calls.a2++)
    const offB = await waiterStore.subscribeToReleases(b, () => calls.b++)
    // (An idle subscriber from an earlier test may take a moment to leave the server's list.)
    await until(async () => (await waiterSubscriberIds()).length === 1, 'a single subscriber connection')
    expect(await subscriberCount(a)).toBe(1)
    expect(await subscriberCount(b)).toBe(1)

    // Releases are announced while someone waits in the queue (here a waiter from a third store).
    const queued = new RedisStore({ connection: admin, prefix })
    const place = { lease: 10_000 }
    await holderStore.acquire(a, 'o', 10_000)
    await queued.acquire(a, 'w', 10_000, place)
    await holderStore.release(a, 'o')
    await until(async () => calls.a1 === 1 && calls.a2 === 1, 'both listeners of a')
    expect(calls.b).toBe(0)
    await queued.leaveQueue(a, 'w')

    // A release that did not happen (wrong owner) announces nothing.
    await holderStore.acquire(b, 'o', 10_000)
    await queued.acquire(b, 'w', 10_000, place)
    expect(await holderStore.release(b, 'intruder')).toBe(false)
    await sleep(50)
    expect(calls.b).toBe(0)
    await holderStore.forceRelease(b)
    await until(async () => calls.b === 1, 'the listener of b')
    await queued.leaveQueue(b, 'w')

    await offA1()
    expect(await subscriberCount(a)).toBe(1)
    await offA2()
    await offA2()
    await until(async () => (await subscriberCount(a)) === 0, 'a to be unsubscribed')
    expect(await subscriberCount(b)).toBe(1)
    await offB()
    await until(async () => (await subscriberCount(b)) === 0, 'b to be unsubscribed')
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
    await until(async () => (await subscriberCount(key)) === 1, 'the waiter to subscribe')

    const [id] = await waiterSubscriberIds()
    expect(id).toBeTruthy()
    // Kill, check nobody listens, and release with the store's own script, in one pipeline: Redis runs
    // the three back to back, so the subscriber cannot reconnect in between and the announcement is lost.
    const { lock, fence, queue, queueLeases, channel } = lockKeys(prefix, key)
    const releasedAt = performance.now()
    const replies = await admin
      .pipeline()
      .call('CLIENT', 'KILL', 'ID', id!)
      .pubsub('NUMSUB', channel)
      .eval(RELEASE_SCRIPT, 4, lock, fence, queue, queueLeases, holder.getOwner(), channel, '3600000')
      .exec()
    expect(replies?.map(([error]) => error)).toEqual([null, null, null])
    expect(replies?.[1]?.[1]).toEqual([channel, 0])
    expect(replies?.[2]?.[1]).toBe(1)
    expect(await waiting).toBe(true)
    expect(performance.now() - releasedAt).toBeLessThan(retryDelay + 600)
    await waiter.release()

    // The subscriber reconnects and subscribes again to what was still wanted.
    await until(async () => (await subscriberCount(other)) === 1, 'the subscriber to come back')
    await holderStore.acquire(other, 'o', 10_000)
    await new RedisStore({ connection: admin, prefix }).acquire(other, 'w', 10_000, { lease: 1_000 })
    await holderStore.release(other, 'o')
    await until(async () => otherCalls === 1, 'a notification after the reconnect')
    await offOther()
  })

  test('the subscriber connection closes itself soon after the last subscription ends', async () => {
    const key = uniqueKey('idle')
    const off = await waiterStore.subscribeToReleases(key, () => {})
    expect(await waiterSubscriberIds()).toHaveLength(1)
    await off()
    await until(async () => (await waiterSubscriberIds()).length === 0, 'the idle subscriber to close')
    // And the next wait opens a new one.
    const again = await waiterStore.subscribeToReleases(key, () => {})
    expect(await subscriberCount(key)).toBe(1)
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
    const connection = connect({ connectionName: `${waiterName}-close` })
    const store = new RedisStore({ connection, prefix })
    const key = uniqueKey('close')
    await store.subscribeToReleases(key, () => {})
    expect(await subscriberCount(key)).toBe(1)
    await store.close()
    await until(async () => (await subscriberCount(key)) === 0, 'the subscriber to go')
    expect(connection.status).toBe('ready')
    expect(await connection.ping()).toBe('PONG')
    await connection.quit()
  })
})
