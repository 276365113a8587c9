import assert from 'node:assert/strict'
import { LockFactory } from '../lock_factory.js'
import type { LockStore, Unsubscribe } from '../store.js'
import { countingStore, type Suite, sleep, waitFor } from './context.js'

/**
 * A store that announces releases must wake waiters with a long retry delay at once; one that cannot is
 * held to its polling delay.
 */
export function wakingTests({ test, setup, capabilities }: Suite): void {
  const retryDelay = capabilities.releaseNotifications ? '10s' : 100

  test('a waiter gets a released lock promptly (woken by the release where the store announces it)', async () => {
    const { factory, otherFactory, key } = await setup()
    const holder = factory.createLock(key, '10s')
    await holder.acquire()
    const waiter = otherFactory.createLock(key, '10s')
    const waiting = waiter.acquire({ retry: { delay: retryDelay, timeout: '20s' } })
    await sleep(300)
    const releasedAt = performance.now()
    await holder.release()
    assert.equal(await waiting, true)
    const handoff = performance.now() - releasedAt
    assert.ok(handoff < 2_000, `handed over in ${Math.round(handoff)} ms, not after a 10 s delay`)
    await waiter.release()
  })

  test('many waiters on one key: each release hands the lock to one of them', async () => {
    const { factory, otherFactory, key } = await setup()
    const holder = factory.createLock(key, '10s')
    await holder.acquire()
    let holders = 0
    let maxHolders = 0
    const waiters = Array.from({ length: 5 }, (_, i) =>
      (i % 2 ? factory : otherFactory).createLock(key, '10s').run(
        async () => {
          holders += 1
          maxHolders = Math.max(maxHolders, holders)
          await sleep(5)
          holders -= 1
        },
        { retry: { delay: retryDelay, timeout: '20s' } },
      ),
    )
    await sleep(200)
    const started = performance.now()
    await holder.release()
    const results = await Promise.all(waiters)
    assert.ok(results.every(([ran]) => ran))
    assert.equal(maxHolders, 1)
    assert.ok(performance.now() - started < 5_000, 'all five were handed the lock without waiting out their delays')
  })
}

/** How long an announcement that was missed is waited for after a later one arrived. */
const STRAGGLER_MS = 150

/**
 * Puts a waiter in the queue of `key` on a queueing store, so that the next release has someone to announce
 * (a queueing store announces nothing when nobody waits). Returns how to take it out again. A no-op on
 * other stores, which announce every release.
 */
async function queueWaiter(store: LockStore, key: string, queueing: boolean): Promise<() => Promise<void>> {
  if (!queueing) return async () => {}
  const owner = `waiter-${Math.random().toString(36).slice(2)}`
  const reply = await store.acquire(key, owner, 10_000, { lease: 10_000 })
  assert.equal(reply.acquired, false, 'the key is held while the waiter joins its queue')
  return async () => {
    await store.leaveQueue?.(key, owner)
  }
}

/**
 * `subscribeToReleases` itself, heard from the other "process": every release and force release of the key
 * is announced once the subscription is active (when the promise resolves), to that key's listeners only,
 * and never after unsubscribing. Waiters still poll, so a notification lost to a dropped connection is
 * allowed; one never sent is not. On a queueing store a release is announced only when someone waits, so
 * each of these tests puts a waiter in the queue first.
 */
export function releaseNotificationTests({ test, setup, createStore, capabilities }: Suite): void {
  if (!capabilities.releaseNotifications) {
    test('declared without release notifications: the store has no subscribeToReleases', async () => {
      assert.equal((await createStore()).subscribeToReleases, undefined)
    })
    return
  }

  const waitOn = (store: LockStore, key: string) => queueWaiter(store, key, capabilities.waitQueue)
  const subscribe = (store: LockStore, key: string, listener: () => void): Promise<Unsubscribe> => {
    assert.ok(store.subscribeToReleases, 'capabilities.releaseNotifications is true')
    return store.subscribeToReleases(key, listener)
  }

  test('release and force release are both announced to the subscribers of the key', async () => {
    const { factory, otherFactory, otherStore, key } = await setup()
    let heard = 0
    const unsubscribe = await subscribe(otherStore, key, () => heard++)
    try {
      const lock = factory.createLock(key, '10s')
      await lock.acquire()
      let leave = await waitOn(otherStore, key)
      await lock.release()
      await waitFor(() => heard >= 1, 'a release was announced')
      await leave()
      const before = heard
      await factory.createLock(key, '10s').acquire()
      leave = await waitOn(otherStore, key)
      await otherFactory.createLock(key).forceRelease()
      await waitFor(() => heard > before, 'a force release was announced')
      await leave()
    } finally {
      await unsubscribe()
    }
  })

  test('a listener that unsubscribed hears nothing more', async () => {
    const { factory, otherStore, key } = await setup()
    let stale = 0
    let live = 0
    const unsubscribeStale = await subscribe(otherStore, key, () => stale++)
    const unsubscribeLive = await subscribe(otherStore, key, () => live++)
    try {
      await unsubscribeStale()
      const lock = factory.createLock(key, '10s')
      await lock.acquire()
      const leave = await waitOn(otherStore, key)
      await lock.release()
      await waitFor(() => live >= 1, 'the listener still subscribed heard the release')
      await leave()
      await sleep(STRAGGLER_MS)
      assert.equal(stale, 0, 'the unsubscribed listener was called')
    } finally {
      await unsubscribeLive()
    }
  })

  test('a release wakes only the subscribers of that key', async () => {
    const { factory, otherFactory, otherStore, key } = await setup()
    const target = `${key}:a`
    // Names a prefix match, a case-folding match or a pattern subscription would confuse with the target.
    const bystanders = [key, `${key}:ab`, `${key}:A`, `${key}:*`]
    let heard = 0
    const woken: string[] = []
    const unsubscribes = [await subscribe(otherStore, target, () => heard++)]
    for (const name of bystanders) unsubscribes.push(await subscribe(otherStore, name, () => woken.push(name)))
    try {
      const lock = factory.createLock(target, '10s')
      await lock.acquire()
      let leave = await waitOn(otherStore, target)
      await lock.release()
      await leave()
      await factory.createLock(target, '10s').acquire()
      leave = await waitOn(otherStore, target)
      await otherFactory.createLock(target).forceRelease()
      await waitFor(() => heard >= 2, 'the release and force release of the target key were announced')
      await leave()
      await sleep(STRAGGLER_MS)
      assert.deepEqual(woken, [], 'listeners of other keys were woken')
    } finally {
      for (const unsubscribe of unsubscribes) await unsubscribe()
    }
  })

  test('a subscription that reports heardSince was passed, before it resolved, what the store heard for the key since then', async () => {
    const { factory, otherStore, key } = await setup()
    // Another key's subscription first: a store that listens on one connection for every key has it open.
    const warm = await subscribe(otherStore, `${key}:warm`, () => {})
    try {
      const before = performance.now()
      const lock = factory.createLock(key, '10s')
      await lock.acquire()
      const leave = await waitOn(otherStore, key)
      await lock.release()
      // The announcement reaches the store while the key has no listener there.
      await sleep(STRAGGLER_MS)
      let heard = 0
      const unsubscribe = await subscribe(otherStore, key, () => heard++)
      try {
        const { heardSince } = unsubscribe
        // Optional: a store that does not report it costs a first-time waiter one extra attempt.
        if (heardSince === undefined) return
        assert.ok(Number.isFinite(heardSince) && heardSince <= performance.now(), 'heardSince is a past performance.now() time')
        if (heardSince <= before) {
          assert.ok(heard >= 1, 'the release announced after heardSince, before the listener came, was passed to it')
        }
      } finally {
        await unsubscribe()
        await leave()
      }
    } finally {
      await warm()
    }
  })

  test('a first wait on a key, the store already listening and reporting heardSince, costs two attempts', async () => {
    const { factory, otherStore, key } = await setup()
    const warm = await subscribe(otherStore, `${key}:warm`, () => {})
    try {
      const probe = await subscribe(otherStore, `${key}:probe`, () => {})
      await probe()
      // Optional: without it, a first wait makes one more attempt once its subscription is active.
      if (probe.heardSince === undefined) return
      const counted = countingStore(otherStore, true)
      const holder = factory.createLock(key, '10s')
      await holder.acquire()
      const waiter = new LockFactory(counted.store).createLock(key, '10s')
      const waiting = waiter.acquire({ retry: { delay: '10s', timeout: '20s' } })
      await sleep(300)
      await holder.release()
      assert.equal(await waiting, true)
      assert.equal(counted.acquires(), 2, 'refused, then granted once the release was announced: no attempt more')
      await waiter.release()
    } finally {
      await warm()
    }
  })

  test('a subscription is active as soon as subscribeToReleases resolves', async () => {
    const { factory, otherStore, key } = await setup()
    for (let round = 0; round < 3; round++) {
      const name = `${key}:${round}`
      const lock = factory.createLock(name, '10s')
      await lock.acquire()
      const leave = await waitOn(otherStore, name)
      let heard = 0
      const unsubscribe = await subscribe(otherStore, name, () => heard++)
      try {
        // Released the moment the subscription says it is active: a store that resolves early misses it.
        await lock.release()
        await waitFor(() => heard >= 1, `the release right after subscribing was announced (round ${round + 1})`)
        await leave()
      } finally {
        await unsubscribe()
      }
    }
  })
}
