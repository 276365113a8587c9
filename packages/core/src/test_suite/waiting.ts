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
