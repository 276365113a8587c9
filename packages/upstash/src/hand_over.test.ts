import { LockFactory } from '@verrou/core'
import { lockKeys } from '@verrou/redis-scripts'
import type { UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import type { Redis as IORedis } from 'ioredis'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { client, type PrivateRestServer, startPrivateRestServer, uniqueKey } from '../test/setup.js'
import { UpstashStore } from './store.js'

/**
 * A release hands the lock straight to the first live waiter when that waiter's store announces (it
 * records the key's inbox with its place), over the REST API and its event streams. Each store has its own
 * client, as separate function invocations would; each client's script calls are counted.
 */
const prefix = 'verrou-heir-test:'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const handedTo = (owner: string) => Buffer.concat([Buffer.from([0xff]), Buffer.from(owner)])

let env: PrivateRestServer
let server: UpstashRestServer
let admin: IORedis
const stores: UpstashStore[] = []

beforeAll(async () => {
  env = await startPrivateRestServer('heir-token')
  ;({ server, admin } = env)
})

afterAll(async () => {
  for (const store of stores) await store.close()
  await env?.close()
})

/**
 * A store on a client of its own; `scripts` counts the scripts it sends. Without auto-pipelining, whose
 * proxy would route the calls past the counting wrapper.
 */
function invocation(options: { releaseNotifications?: boolean } = {}) {
  const connection = client(server, { enableAutoPipelining: false })
  const counted = { scripts: 0 }
  const evalsha = connection.evalsha.bind(connection)
  connection.evalsha = ((...args: Parameters<typeof evalsha>) => {
    counted.scripts++
    return evalsha(...args)
  }) as typeof connection.evalsha
  const store = new UpstashStore({ connection, prefix, ...options })
  stores.push(store)
  return { store, counted }
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const until = performance.now() + 5_000
  while (!(await check())) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

const holderOf = (key: string) => admin.getBuffer(lockKeys(prefix, key).lock)
const queued = (key: string) => admin.zrange(lockKeys(prefix, key).queue, 0, -1)

test('a release hands the lock to the waiting Lock of another invocation: it resolves with no request of its own, and claims a quarter into the window', async () => {
  const key = uniqueKey('handed')
  const holder = invocation()
  const heir = invocation()
  const holding = new LockFactory(holder.store).createLock(key, '10s')
  expect(await holding.acquire()).toBe(true)
  const waiting = new LockFactory(heir.store).createLock(key, '30s', { owner: 'heir' })
  const acquired = waiting.acquire({ retry: { delay: '5s', timeout: '20s' } })
  await waitFor(async () => (await queued(key)).includes('heir'), 'the heir to queue')
  expect(await admin.hget(lockKeys(prefix, key).queueInboxes, 'heir')).toMatch(/^verrou:heir:verrou-released:/)
  await sleep(300)
  const before = heir.counted.scripts

  await holding.release()
  expect(await acquired).toBe(true)
  expect(heir.counted.scripts).toBe(before)
  expect(waiting.fencingToken).toBeGreaterThan(holding.fencingToken!)
  expect(await holderOf(key)).toEqual(handedTo('heir'))
  await waitFor(async () => (await holderOf(key))?.toString() === 'heir', 'the claim')
  expect(heir.counted.scripts).toBe(before + 1)
  expect(await admin.pttl(lockKeys(prefix, key).lock)).toBeGreaterThan(25_000)
  await waiting.release()
  expect(await admin.exists(lockKeys(prefix, key).lock)).toBe(0)
})

test('an heir that releases before its claim is due never sends it; its release hands the lock on', async () => {
  const key = uniqueKey('early')
  const [holder, heir, next] = [invocation(), invocation(), invocation()]
  await holder.store.acquire(key, 'h', 10_000)
  const waitingHeir = new LockFactory(heir.store).createLock(key, '30s', { owner: 'heir' })
  const heirAcquired = waitingHeir.acquire({ retry: { delay: '5s', timeout: '20s' } })
  await waitFor(async () => (await queued(key)).includes('heir'), 'the heir to queue')
  const waitingNext = new LockFactory(next.store).createLock(key, '30s', { owner: 'next' })
  const nextAcquired = waitingNext.acquire({ retry: { delay: '5s', timeout: '20s' } })
  await waitFor(async () => (await queued(key)).includes('next'), 'next to queue')
  await sleep(300)
  const [heirBefore, nextBefore] = [heir.counted.scripts, next.counted.scripts]

  await holder.store.release(key, 'h')
  expect(await heirAcquired).toBe(true)
  await waitingHeir.release()
  expect(await nextAcquired).toBe(true)
  expect(waitingNext.fencingToken).toBeGreaterThan(waitingHeir.fencingToken!)
  // One request each: the heir's release; next's claim comes later, if it holds on.
  expect(heir.counted.scripts - heirBefore).toBe(1)
  expect(next.counted.scripts - nextBefore).toBe(0)
  await sleep(700)
  expect(heir.counted.scripts - heirBefore).toBe(1)
  await waitingNext.release()
})

test('without release notifications a waiter keeps no inbox: the lock is freed for it, not handed over', async () => {
  const key = uniqueKey('polling')
  const [holder, waiter] = [invocation(), invocation({ releaseNotifications: false })]
  await holder.store.acquire(key, 'h', 10_000)
  expect(await waiter.store.acquire(key, 'w', 10_000, { lease: 10_000 })).toMatchObject({ acquired: false, position: 0 })
  expect(await admin.hexists(lockKeys(prefix, key).queueInboxes, 'w')).toBe(0)
  await holder.store.release(key, 'h')
  expect(await admin.exists(lockKeys(prefix, key).lock)).toBe(0)
  expect(await waiter.store.acquire(key, 'w', 10_000, { lease: 10_000 })).toMatchObject({ acquired: true })
  await waiter.store.release(key, 'w')
})

test('an owner id that reads as JSON ("0042") is heard as itself, in every listening invocation; only its own store answers it', async () => {
  const key = uniqueKey('json-owner')
  const [holder, heir, other] = [invocation(), invocation(), invocation()]
  await holder.store.acquire(key, 'h', 10_000)
  // Every invocation waiting on the key listens on its inbox; the message names the one it is for.
  const heard: Record<string, (string | undefined)[]> = { heir: [], other: [] }
  const offs = [
    await heir.store.subscribeToReleases!(key, (next) => heard.heir!.push(next)),
    await other.store.subscribeToReleases!(key, (next) => heard.other!.push(next)),
  ]
  await heir.store.acquire(key, '0042', 30_000, { lease: 10_000 })
  await other.store.acquire(key, '42', 30_000, { lease: 10_000 })
  await holder.store.release(key, 'h')
  await waitFor(() => heard.heir!.length > 0 && heard.other!.length > 0, 'the announcement')
  expect(heard).toEqual({ heir: ['0042'], other: ['0042'] })
  const [heirBefore, otherBefore] = [heir.counted.scripts, other.counted.scripts]
  expect(await heir.store.acquire(key, '0042', 30_000, { lease: 10_000 })).toMatchObject({ acquired: true, handedOver: {} })
  expect(heir.counted.scripts).toBe(heirBefore)
  // The other store heard the same message, but holds no place for that owner: it asks Redis, and waits.
  expect(await other.store.acquire(key, '42', 30_000, { lease: 10_000 })).toMatchObject({ acquired: false, position: 0 })
  expect(other.counted.scripts).toBe(otherBefore + 1)
  await heir.store.release(key, '0042')
  await other.store.leaveQueue(key, '42')
  for (const off of offs) await off()
})
