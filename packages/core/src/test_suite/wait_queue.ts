import assert from 'node:assert/strict'
import type { AcquireResult, LockStore } from '../store.js'
import { type Suite, sleep, waitFor } from './context.js'

/** Short place leases keep the group quick; every step renews the places that must stay alive. */
const PLACE_LEASE_MS = 400
const TTL_MS = 10_000
/** How long an announcement that should not come is waited for. */
const QUIET_MS = 150

const owners = (key: string, count: number) => Array.from({ length: count }, (_, i) => `${key}:waiter-${i + 1}`)

/** One attempt that keeps (or takes) a place in the queue. */
const join = (store: LockStore, key: string, owner: string, lease = PLACE_LEASE_MS): Promise<AcquireResult> =>
  store.acquire(key, owner, TTL_MS, { lease })

function token(result: AcquireResult, who: string): number {
  assert.ok(result.acquired, `${who} was granted the lock`)
  return result.fencingToken
}

function leave(store: LockStore, key: string, owner: string): Promise<void> {
  assert.ok(store.leaveQueue, 'capabilities.waitQueue is true')
  return store.leaveQueue(key, owner)
}

/**
 * The queueing store's rules, at the store level: FIFO across stores (processes), no barging, positions,
 * leaving, dead places skipped after their lease, the next owner announced by name, nothing announced to
 * nobody, and fencing tokens increasing through every hand-over.
 */
export function waitQueueTests(suite: Suite): void {
  const { test, setup, createStore, capabilities, afterExpiry } = suite
  if (!capabilities.waitQueue) {
    test('declared without a wait queue: the store has no leaveQueue', async () => {
      assert.equal((await createStore()).leaveQueue, undefined)
    })
    return
  }
  /** Three more stores besides the test's two: five "processes". */
  const stores = async () => {
    const { store, otherStore, key } = await setup()
    return { key, all: [store, otherStore, await createStore(), await createStore()] as const }
  }

  test('waiters get the lock in the order they joined, across stores, with increasing fencing tokens', async () => {
    const { key, all } = await stores()
    const [holderStore, ...waiterStores] = all
    const holder = `${key}:holder`
    const waiters = owners(key, 3)
    let last = token(await holderStore.acquire(key, holder, TTL_MS), 'the first holder')
    for (const [i, owner] of waiters.entries()) assert.equal((await join(waiterStores[i]!, key, owner)).acquired, false)
    let current = holder
    let currentStore: LockStore = holderStore
    for (const [i, owner] of waiters.entries()) {
      const rest = waiters.slice(i + 1)
      for (const [j, other] of rest.entries()) await join(waiterStores[i + 1 + j]!, key, other)
      assert.equal(await currentStore.release(key, current), true)
      const barging = await holderStore.acquire(key, holder, TTL_MS)
      assert.equal(barging.acquired, false, 'the releaser, asking again without a place, jumped the queue')
      for (const [j, other] of rest.entries()) {
        const reply = await join(waiterStores[i + 1 + j]!, key, other)
        assert.equal(reply.acquired, false, `${other} was served before ${owner}, who joined first`)
      }
      const next = token(await join(waiterStores[i]!, key, owner), owner)
      assert.ok(next > last, `fencing token ${next} after ${last}`)
      last = next
      current = owner
      currentStore = waiterStores[i]!
    }
    assert.equal(await currentStore.release(key, current), true)
    assert.ok(token(await holderStore.acquire(key, holder, TTL_MS), 'the first holder, with the queue empty') > last)
    await holderStore.release(key, holder)
  })

  test('an acquire without wait neither jumps a live queue nor joins it', async () => {
    const { key, all } = await stores()
    const [a, b, c] = all
    const [holder, waiter, newcomer] = owners(key, 3) as [string, string, string]
    token(await a.acquire(key, holder, TTL_MS), holder)
    assert.equal((await join(b, key, waiter)).acquired, false)
    assert.equal(await a.release(key, holder), true)
    assert.equal((await c.acquire(key, newcomer, TTL_MS)).acquired, false, 'a newcomer jumped a live queue')
    // The lock is free, or already the waiter's (a store may hand it over on release): the waiter gets it.
    token(await join(b, key, waiter), 'the waiter at the head')
    assert.equal(await b.release(key, waiter), true)
    token(await c.acquire(key, newcomer, TTL_MS), 'the newcomer, which never joined the queue')
    await c.release(key, newcomer)
  })

  test('position says the place among live waiters, kept on renewal', async () => {
    const { key, all } = await stores()
    const [a, b, c, d] = all
    const [holder, first, second, third] = owners(key, 4) as [string, string, string, string]
    token(await a.acquire(key, holder, TTL_MS), holder)
    const positions = [await join(b, key, first), await join(c, key, second), await join(d, key, third)]
    assert.deepEqual(
      positions.map((reply) => (reply.acquired ? 'granted' : reply.position)),
      [0, 1, 2],
    )
    const renewed = await join(c, key, second)
    assert.equal(renewed.acquired ? 'granted' : renewed.position, 1, 'renewing keeps the place')
    await leave(b, key, first)
    const after = [await join(c, key, second), await join(d, key, third)]
    assert.deepEqual(
      after.map((reply) => (reply.acquired ? 'granted' : reply.position)),
      [0, 1],
      'the places behind a waiter that left move up',
    )
    await a.forceRelease(key)
  })

  test('a waiter that leaves the queue does not hold up the next', async () => {
    const { key, all } = await stores()
    const [a, b, c] = all
    const [holder, leaving, next] = owners(key, 3) as [string, string, string]
    token(await a.acquire(key, holder, TTL_MS), holder)
    await join(b, key, leaving, TTL_MS)
    await join(c, key, next, TTL_MS)
    await leave(b, key, leaving)
    await leave(b, key, leaving) // idempotent
    await leave(b, key, `${key}:never-joined`)
    assert.equal(await a.release(key, holder), true)
    token(await join(c, key, next), 'the waiter behind the one that left, at once')
    await c.release(key, next)
  })

  test('a dead waiter (no renewal) delays the next by at most its place lease', async () => {
    const { key, all } = await stores()
    const [a, b, c] = all
    const [holder, dead, next] = owners(key, 3) as [string, string, string]
    token(await a.acquire(key, holder, TTL_MS), holder)
    const diedAt = performance.now()
    await join(b, key, dead)
    await join(c, key, next)
    assert.equal(await a.release(key, holder), true)
    assert.equal((await join(c, key, next)).acquired, false, 'a live place ahead is respected until its lease ends')
    let reply = await join(c, key, next)
    while (!reply.acquired && performance.now() - diedAt < afterExpiry(PLACE_LEASE_MS) + 1_000) {
      await sleep(10)
      reply = await join(c, key, next)
    }
    const waited = performance.now() - diedAt
    token(reply, 'the waiter behind a dead one')
    assert.ok(waited <= afterExpiry(PLACE_LEASE_MS) + 100, `waited ${Math.round(waited)} ms behind a dead place`)
    await c.release(key, next)
  })

  test('the data of a queue whose places all died is gone: the key is free for anyone', async () => {
    const { key, all } = await stores()
    const [a, b, c] = all
    const [holder, dead, newcomer] = owners(key, 3) as [string, string, string]
    token(await a.acquire(key, holder, TTL_MS), holder)
    await join(b, key, dead)
    await join(c, key, `${dead}-2`)
    assert.equal(await a.release(key, holder), true)
    await sleep(afterExpiry(PLACE_LEASE_MS))
    assert.equal(await c.isLocked(key), false)
    token(await c.acquire(key, newcomer, TTL_MS), 'a newcomer without a place, once every place died')
    await c.release(key, newcomer)
  })

  if (capabilities.releaseNotifications) announcementTests(suite)
}

function subscribe(store: LockStore, key: string, heard: (string | undefined)[]) {
  assert.ok(store.subscribeToReleases, 'capabilities.releaseNotifications is true')
  return store.subscribeToReleases(key, (next) => heard.push(next))
}

function announcementTests({ test, setup, createStore }: Suite): void {
  test('release, force release and leaving announce the next waiter by name, to the store that queued it', async () => {
    const { store, otherStore, key } = await setup()
    const third = await createStore()
    const [holder, first, second, last] = owners(key, 4) as [string, string, string, string]
    // Each waiter joins through its own store, as each process has its own; every store listens. A store may
    // tell only the store that queued the waiter named: the others hear that name or nothing.
    const heardByOther: (string | undefined)[] = []
    const heardByThird: (string | undefined)[] = []
    const heardByStore: (string | undefined)[] = []
    const offs = [
      await subscribe(otherStore, key, heardByOther),
      await subscribe(third, key, heardByThird),
      await subscribe(store, key, heardByStore),
    ]
    const heardAnywhere = () => [...heardByOther, ...heardByThird, ...heardByStore]
    try {
      token(await store.acquire(key, holder, TTL_MS), holder)
      await join(otherStore, key, first, TTL_MS)
      await join(third, key, second, TTL_MS)
      await store.release(key, holder)
      await waitFor(() => heardByOther.includes(first), 'the release was announced to the head, through its store')
      assert.deepEqual(
        heardAnywhere().filter((name) => name !== first),
        [],
        'the release named the head of the queue and nobody else',
      )
      await leave(otherStore, key, first)
      await waitFor(() => heardByThird.includes(second), 'the head leaving a free lock was announced')
      token(await join(third, key, second), second)
      await join(store, key, last, TTL_MS)
      await store.forceRelease(key)
      await waitFor(() => heardByStore.includes(last), 'the force release was announced')
      assert.deepEqual(
        heardAnywhere().filter((name) => name !== first && name !== second && name !== last),
        [],
        'every announcement named the waiter that was first at the time',
      )
      await leave(store, key, last)
    } finally {
      for (const off of offs) await off()
    }
  })

  test('nothing is announced when nobody waits', async () => {
    const { store, otherStore, key } = await setup()
    const [holder, waiter] = owners(key, 2) as [string, string]
    const heard: (string | undefined)[] = []
    const unsubscribe = await subscribe(otherStore, key, heard)
    try {
      token(await store.acquire(key, holder, TTL_MS), holder)
      await store.release(key, holder)
      token(await store.acquire(key, holder, TTL_MS), holder)
      await store.forceRelease(key)
      // A waiter that got the lock is no longer waiting: its release has nobody to announce either.
      token(await store.acquire(key, holder, TTL_MS), holder)
      await join(otherStore, key, waiter, TTL_MS)
      await store.release(key, holder)
      await waitFor(() => heard.length >= 1, 'the release with a waiter was announced')
      token(await join(otherStore, key, waiter), waiter)
      await otherStore.release(key, waiter)
      await sleep(QUIET_MS)
      assert.deepEqual(heard, [waiter], 'only the release with someone waiting was announced')
    } finally {
      await unsubscribe()
    }
  })
}
