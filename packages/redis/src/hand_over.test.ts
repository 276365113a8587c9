import { createHash } from 'node:crypto'
import { type AcquireResult, LockFactory } from '@verrou/core'
import { LOCK_SCRIPTS, type LockScript, lockKeys } from '@verrou/redis-scripts'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { connect, uniqueKey } from '../test/connections.js'
import { RedisStore } from './store.js'

/**
 * A release hands the lock straight to the first live waiter (the heir) when the heir's store reads
 * hand-overs, against the real server. Each "process" is a store on a connection of its own, with the
 * scripts it sends recorded by name.
 */
const prefix = 'verrou-heir-test:'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
/** What the lock key holds while handed to `owner` and not claimed (see hand_over in the scripts). */
const handedTo = (owner: string) => Buffer.concat([Buffer.from([0xff]), Buffer.from(owner)])

const scriptBySha = new Map(
  Object.entries(LOCK_SCRIPTS).map(([name, lua]) => [createHash('sha1').update(lua).digest('hex'), name as LockScript]),
)

let admin: Redis
const connections: Redis[] = []
const stores: RedisStore[] = []

beforeAll(() => {
  admin = connect()
})

afterAll(async () => {
  for (const store of stores) await store.close()
  await Promise.all([admin.quit(), ...connections.map((connection) => connection.quit())])
})

/** A store on a connection of its own; `sent` lists the scripts it runs, by name. */
function processStore() {
  const connection = connect()
  const sent: LockScript[] = []
  const evalsha = connection.evalsha.bind(connection) as (...args: unknown[]) => Promise<unknown>
  ;(connection as unknown as { evalsha: (...args: unknown[]) => Promise<unknown> }).evalsha = (...args: unknown[]) => {
    sent.push(scriptBySha.get(String(args[0])) ?? ('unknown' as LockScript))
    return evalsha(...args)
  }
  const store = new RedisStore({ connection, prefix })
  connections.push(connection)
  stores.push(store)
  return { store, sent }
}

function tokenOf(result: AcquireResult): number {
  if (!result.acquired) throw new Error(`expected a grant, got ${JSON.stringify(result)}`)
  return result.fencingToken
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, ms = 5_000): Promise<void> {
  const until = performance.now() + ms
  while (!(await check())) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

const holderOf = (key: string) => admin.getBuffer(lockKeys(prefix, key).lock)
const tokenIn = async (key: string) => Number(await admin.get(lockKeys(prefix, key).fence))
const queued = (key: string) => admin.zrange(lockKeys(prefix, key).queue, 0, -1)

/** Has `store` waiting on `key` as `owner`, subscribed, so that it hears a hand-over to it. */
async function waitingStore(store: RedisStore, key: string, owner: string, lease = 10_000) {
  const heard: (string | undefined)[] = []
  const off = await store.subscribeToReleases(key, (next) => heard.push(next))
  const refused = await store.acquire(key, owner, 30_000, { lease })
  expect(refused.acquired).toBe(false)
  return { heard, off }
}

/**
 * `h` holds `key` on one store and releases it to `heir` waiting on another (place lease `lease`), whose
 * store hears of it; the heir then asks, for `ttl`, and is answered from the message.
 */
async function handedToHeir(key: string, ttl: number, lease: number) {
  const [holder, heir] = [processStore(), processStore()]
  await holder.store.acquire(key, 'h', 10_000)
  const { heard, off } = await waitingStore(heir.store, key, 'heir', lease)
  await holder.store.release(key, 'h')
  await waitFor(() => heard.includes('heir'), 'the heir to be told')
  const granted = await heir.store.acquire(key, 'heir', ttl, { lease })
  if (!granted.acquired || granted.handedOver === undefined)
    throw new Error(`expected a hand-over, got ${JSON.stringify(granted)}`)
  return { holder, heir, granted, claimed: granted.handedOver.claimed, off }
}

test('a release hands the lock to the waiting Lock of another process: no acquire script after it, the next token, a claim only once a quarter of the window passed', async () => {
  const key = uniqueKey('handed')
  const holder = processStore()
  const heir = processStore()
  const holding = new LockFactory(holder.store).createLock(key, '10s')
  expect(await holding.acquire()).toBe(true)
  const waiting = new LockFactory(heir.store).createLock(key, '30s', { owner: 'heir' })
  const acquired = waiting.acquire({ retry: { timeout: 10_000 } })
  await waitFor(async () => (await queued(key)).includes('heir'), 'the waiter to queue')
  await sleep(100)
  const before = heir.sent.length

  await holding.release()
  expect(await acquired).toBe(true)
  const answeredAt = performance.now()
  expect(waiting.fencingToken).toBeGreaterThan(holding.fencingToken!)
  expect(waiting.fencingToken).toBe(await tokenIn(key))
  // Held for the heir by the release itself, the place gone from the queue, the window its place lease.
  expect(await holderOf(key)).toEqual(handedTo('heir'))
  expect(await queued(key)).toEqual([])
  expect(await admin.pttl(lockKeys(prefix, key).lock)).toBeLessThanOrEqual(2_000)
  expect(heir.sent.slice(before)).toEqual([])
  // The holder that handed it on is a stale owner now.
  expect(await holder.store.release(key, holding.getOwner())).toBe(false)
  expect(await holder.store.extend(key, holding.getOwner(), 10_000)).toBe(false)

  // The claim goes out a quarter into the 2 s window, and takes the lock for the ttl asked for.
  await waitFor(async () => (await holderOf(key))?.toString() === 'heir', 'the claim', 2_000)
  expect(performance.now() - answeredAt).toBeGreaterThan(250)
  expect(heir.sent.slice(before)).toEqual(['extend'])
  expect(await admin.pttl(lockKeys(prefix, key).lock)).toBeGreaterThan(25_000)
  expect(await tokenIn(key)).toBe(waiting.fencingToken)
  await waitFor(() => waiting.getRemainingTime()! > 25_000, 'the Lock to follow the claim')
  await waiting.release()
  expect(await admin.exists(lockKeys(prefix, key).lock)).toBe(0)
})

test('an heir that releases before its claim is due never sends it, and its release hands the lock on', async () => {
  const key = uniqueKey('early')
  const [holder, heir, next] = [processStore(), processStore(), processStore()]
  await holder.store.acquire(key, 'h', 10_000)
  const waitingHeir = new LockFactory(heir.store).createLock(key, '30s', { owner: 'heir' })
  const heirAcquired = waitingHeir.acquire({ retry: { timeout: 10_000 } })
  await waitFor(async () => (await queued(key)).includes('heir'), 'the heir to queue')
  const following = await waitingStore(next.store, key, 'next')
  const before = heir.sent.length

  expect(await holder.store.release(key, 'h')).toBe(true)
  expect(await heirAcquired).toBe(true)
  await waitingHeir.release()
  // Its release ran on the handed grant as it stood, and handed it on: next is told with the next token.
  expect(heir.sent.slice(before)).toEqual(['release'])
  expect(await holderOf(key)).toEqual(handedTo('next'))
  await waitFor(() => following.heard.includes('next'), 'next to be told')
  const granted = await next.store.acquire(key, 'next', 30_000, { lease: 10_000 })
  expect(tokenOf(granted)).toBeGreaterThan(waitingHeir.fencingToken!)
  expect(granted).toMatchObject({ handedOver: { lease: expect.any(Number) } })
  await sleep(700)
  expect(heir.sent.slice(before)).toEqual(['release'])
  expect(await next.store.release(key, 'next')).toBe(true)
  if (granted.acquired) expect(await granted.handedOver?.claimed).toBe(false)
  await following.off()
})

test("an heir whose store did not hear the hand-over takes it with its next attempt, with the hand-over's token, for its ttl", async () => {
  const key = uniqueKey('unheard')
  const [holder, heir] = [processStore(), processStore()]
  await holder.store.acquire(key, 'h', 10_000)
  // Queued, but not listening: nobody hears the message on its inbox.
  expect(await heir.store.acquire(key, 'heir', 30_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
  expect(await holder.store.release(key, 'h')).toBe(true)
  expect(await holderOf(key)).toEqual(handedTo('heir'))
  const handedToken = await tokenIn(key)
  // An attempt without a place claims it just the same.
  const granted = await heir.store.acquire(key, 'heir', 30_000)
  expect(granted).toEqual({ acquired: true, fencingToken: handedToken })
  expect((await holderOf(key))?.toString()).toBe('heir')
  expect(await admin.pttl(lockKeys(prefix, key).lock)).toBeGreaterThan(25_000)
  // Nobody else's attempt could have: tested again with another heir.
  await heir.store.acquire(key, 'other', 30_000, { lease: 5_000 })
  expect(await heir.store.release(key, 'heir')).toBe(true)
  expect(await heir.store.acquire(key, 'intruder', 30_000)).toMatchObject({ acquired: false })
  expect(await heir.store.acquire(key, 'intruder', 30_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
  expect(await holderOf(key)).toEqual(handedTo('other'))
  await heir.store.release(key, 'other')
  await heir.store.leaveQueue(key, 'intruder')
})

test('a hand-over heard for an earlier place of the same owner is ignored; one for its place answers at once', async () => {
  const key = uniqueKey('stale-message')
  const [holder, waiter] = [processStore(), processStore()]
  const keys = lockKeys(prefix, key)
  await holder.store.acquire(key, 'h', 10_000)
  const { off } = await waitingStore(waiter.store, key, 'w')
  const firstPlace = Number(await admin.zscore(keys.queue, 'w'))
  const inbox = (await admin.hget(keys.queueInboxes, 'w'))!
  expect(inbox).toMatch(/^verrou:heir:/)
  // The waiter leaves and queues again: its new place has a new number, even in a queue that vanished.
  await waiter.store.leaveQueue(key, 'w')
  expect(await admin.exists(keys.queue)).toBe(0)
  await waiter.store.acquire(key, 'w', 30_000, { lease: 10_000 })
  const secondPlace = Number(await admin.zscore(keys.queue, 'w'))
  expect(secondPlace).toBeGreaterThan(firstPlace)

  const message = (place: number, token: number) => `${token},${place},${Buffer.byteLength(keys.channel)}:${keys.channel}w`
  await admin.publish(inbox, message(firstPlace, 123))
  await sleep(100)
  const sentBefore = waiter.sent.length
  expect(await waiter.store.acquire(key, 'w', 30_000, { lease: 10_000 })).toMatchObject({ acquired: false, position: 0 })
  expect(waiter.sent.length).toBe(sentBefore + 1)

  // One naming its place is believed without a round trip. It was forged here: the claim finds no such
  // grant on the server and reports it gone, so `Lock` would drop the lock at once.
  await admin.publish(inbox, message(secondPlace, 456))
  await sleep(100)
  const answered = await waiter.store.acquire(key, 'w', 1_000, { lease: 10_000 })
  expect(answered).toMatchObject({ acquired: true, fencingToken: 456, handedOver: { lease: expect.any(Number) } })
  expect(waiter.sent.length).toBe(sentBefore + 1)
  if (answered.acquired) expect(await answered.handedOver?.claimed).toBe(false)
  expect((await holderOf(key))?.toString()).toBe('h')
  await holder.store.release(key, 'h')
  await waiter.store.leaveQueue(key, 'w')
  await off()
})

test('a waiter that leaves with the lock handed to it, unclaimed, gives it to the next waiter', async () => {
  const key = uniqueKey('leave')
  const [holder, heir, next] = [processStore(), processStore(), processStore()]
  await holder.store.acquire(key, 'h', 10_000)
  const first = await waitingStore(heir.store, key, 'heir')
  const second = await waitingStore(next.store, key, 'next')
  await holder.store.release(key, 'h')
  await waitFor(() => first.heard.includes('heir'), 'the heir to be told')
  const heirToken = await tokenIn(key)
  await heir.store.leaveQueue(key, 'heir')
  expect(await holderOf(key)).toEqual(handedTo('next'))
  await waitFor(() => second.heard.includes('next'), 'next to be told')
  expect(tokenOf(await next.store.acquire(key, 'next', 30_000, { lease: 10_000 }))).toBeGreaterThan(heirToken)
  // With nobody behind, a leave frees the lock.
  await next.store.leaveQueue(key, 'next')
  expect(await admin.exists(lockKeys(prefix, key).lock)).toBe(0)
  await first.off()
  await second.off()
})

test('an extend that overtakes the claim makes the lock the heir’s own; the claim still counts', async () => {
  const key = uniqueKey('extend-first')
  const { heir, claimed, off } = await handedToHeir(key, 30_000, 400)
  expect(await heir.store.extend(key, 'heir', 5_000)).toBe(true)
  expect((await holderOf(key))?.toString()).toBe('heir')
  expect(await claimed).toBe(true)
  expect(await admin.pttl(lockKeys(prefix, key).lock)).toBeGreaterThan(25_000)
  await heir.store.release(key, 'heir')
  await off()
})

test('a force release before the claim, or a lock granted anew since, makes the claim report the grant gone', async () => {
  const key = uniqueKey('forced')
  const { holder, heir, granted, claimed, off } = await handedToHeir(key, 30_000, 400)
  await holder.store.forceRelease(key)
  // The same owner granted anew: a new token, which the claim of the old one must not take for its own.
  expect(tokenOf(await heir.store.acquire(key, 'heir', 1_000))).toBeGreaterThan(granted.fencingToken)
  expect(await claimed).toBe(false)
  expect(await admin.pttl(lockKeys(prefix, key).lock)).toBeLessThanOrEqual(1_000)
  await heir.store.release(key, 'heir')
  await off()
})

test('a ttl shorter than the claim window is claimed at once, so the lock is never held longer than asked', async () => {
  const key = uniqueKey('short-ttl')
  const { claimed, off } = await handedToHeir(key, 300, 10_000)
  expect(await claimed).toBe(true)
  expect(await admin.pttl(lockKeys(prefix, key).lock)).toBeLessThanOrEqual(300)
  await off()
})

test('an heir that died holds the next waiter up for its place lease at most, and the token still rises', async () => {
  const key = uniqueKey('dead-heir')
  const [holder, dead, next] = [processStore(), processStore(), processStore()]
  const holderToken = tokenOf(await holder.store.acquire(key, 'h', 10_000))
  await dead.store.acquire(key, 'dead', 30_000, { lease: 400 })
  const waiting = new LockFactory(next.store).createLock(key, '30s', { owner: 'next' })
  const acquired = waiting.acquire({ retry: { timeout: 5_000 } })
  await waitFor(async () => (await queued(key)).includes('next'), 'next to queue')
  const releasedAt = performance.now()
  await holder.store.release(key, 'h')
  expect(await holderOf(key)).toEqual(handedTo('dead'))
  expect(await acquired).toBe(true)
  const waited = performance.now() - releasedAt
  expect(waited).toBeGreaterThan(250)
  expect(waited).toBeLessThan(1_500)
  expect(waiting.fencingToken).toBeGreaterThan(holderToken + 1)
  await waiting.release()
})

test('a waiter queued by an older store (an inbox without the heir prefix) is announced and takes the lock itself, as before', async () => {
  const key = uniqueKey('older-store')
  const holder = processStore()
  const keys = lockKeys(prefix, key)
  await holder.store.acquire(key, 'h', 10_000)
  // The acquire script as an older store sends it: its inbox is `verrou:inbox:<id>`.
  const olderInbox = `verrou:inbox:${key}`
  const join = () =>
    admin.evalsha(
      createHash('sha1').update(LOCK_SCRIPTS.acquire).digest('hex'),
      5,
      keys.lock,
      keys.fence,
      keys.queue,
      keys.queueLeases,
      keys.queueInboxes,
      'old',
      '10000',
      '3600000',
      '10000',
      olderInbox,
    )
  await join()
  const listener = connect()
  const heard: string[] = []
  listener.on('message', (_channel: string, message: string) => heard.push(message))
  await listener.subscribe(olderInbox)
  try {
    expect(await holder.store.release(key, 'h')).toBe(true)
    // Freed, not handed: the plain message, and the waiter's own attempt takes the lock.
    expect(await admin.exists(keys.lock)).toBe(0)
    await waitFor(() => heard.length === 1, 'the older store to be told')
    expect(heard).toEqual([`${Buffer.byteLength(keys.channel)}:${keys.channel}old`])
    expect(await join()).toBeGreaterThan(0)
    expect((await holderOf(key))?.toString()).toBe('old')
  } finally {
    await listener.quit()
    await admin.del(keys.lock)
  }
})
