import assert from 'node:assert/strict'
import { type Suite, sleep } from './context.js'

export function waitingTests({ test, setup }: Suite): void {
  test('a waiter acquires a lock released while it waits', async () => {
    const { factory, otherFactory, key } = await setup()
    const holder = factory.createLock(key, '10s')
    await holder.acquire()
    setTimeout(() => void holder.release(), 150)
    const waiter = otherFactory.createLock(key, '10s')
    assert.equal(await waiter.acquire({ retry: { timeout: '5s', delay: 20 } }), true)
    assert.ok(waiter.fencingToken! > holder.fencingToken!)
    await waiter.release()
  })

  test('acquire gives up after its timeout, without sleeping past it', async () => {
    const { factory, otherFactory, key } = await setup()
    await factory.createLock(key, '10s').acquire()
    const waiter = otherFactory.createLock(key, '10s')
    const started = performance.now()
    assert.equal(await waiter.acquire({ retry: { timeout: 300, delay: 1000 } }), false)
    const elapsed = performance.now() - started
    assert.ok(elapsed >= 290, `waited the whole timeout (${Math.round(elapsed)} ms)`)
    assert.ok(elapsed < 300 + 1000, `but did not sleep a whole delay past it (${Math.round(elapsed)} ms)`)
    await otherFactory.createLock(key).forceRelease()
  })

  test('timeout: 0 makes a single attempt', async () => {
    const { factory, otherFactory, key } = await setup()
    await factory.createLock(key, '10s').acquire()
    assert.equal(await otherFactory.createLock(key).acquire({ retry: { timeout: 0 } }), false)
    await otherFactory.createLock(key).forceRelease()
    assert.equal(await otherFactory.createLock(key).acquire({ retry: { timeout: 0 } }), true)
    await otherFactory.createLock(key).forceRelease()
  })

  test('an aborted acquire rejects with the signal reason at once and leaves nothing held', async () => {
    const { factory, otherFactory, key } = await setup()
    const holder = factory.createLock(key, '10s')
    await holder.acquire()
    const controller = new AbortController()
    const waiter = otherFactory.createLock(key, '10s')
    const reason = new Error('shutting down')
    setTimeout(() => controller.abort(reason), 100)
    const started = performance.now()
    await assert.rejects(waiter.acquire({ signal: controller.signal, retry: { delay: 5_000 } }), (error) => error === reason)
    assert.ok(performance.now() - started < 2_000, 'rejected promptly')
    await holder.release()
    await sleep(100)
    assert.equal(await holder.isLocked(), false, 'the aborted waiter holds nothing')
    const aborted = AbortSignal.abort(new Error('already'))
    await assert.rejects(waiter.acquire({ signal: aborted }), /already/)
  })

  test('exponential backoff still acquires a lock released while waiting', async () => {
    const { factory, otherFactory, key } = await setup()
    const holder = factory.createLock(key, '10s')
    await holder.acquire()
    setTimeout(() => void holder.release(), 100)
    const waiter = otherFactory.createLock(key, '10s')
    assert.equal(await waiter.acquire({ retry: { backoff: 'exponential', delay: 10, maxDelay: 200, timeout: '5s' } }), true)
    await waiter.release()
  })
}

/**
 * A store that announces releases must wake waiters with a long retry delay at once; one that cannot is
 * held to its polling delay.
 */
export function releaseNotificationTests({ test, setup }: Suite): void {
  const retryDelay = (store: { subscribeToReleases?: unknown }) => (store.subscribeToReleases ? '10s' : 100)

  test('a waiter gets a released lock promptly (woken by the release where the store announces it)', async () => {
    const { factory, otherFactory, key, otherStore } = await setup()
    const holder = factory.createLock(key, '10s')
    await holder.acquire()
    const waiter = otherFactory.createLock(key, '10s')
    const waiting = waiter.acquire({ retry: { delay: retryDelay(otherStore), timeout: '20s' } })
    await sleep(300)
    const releasedAt = performance.now()
    await holder.release()
    assert.equal(await waiting, true)
    const handoff = performance.now() - releasedAt
    assert.ok(handoff < 2_000, `handed over in ${Math.round(handoff)} ms, not after a 10 s delay`)
    await waiter.release()
  })

  test('many waiters on one key: each release hands the lock to one of them', async () => {
    const { factory, otherFactory, key, store, otherStore } = await setup()
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
        { retry: { delay: retryDelay(i % 2 ? store : otherStore), timeout: '20s' } },
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
