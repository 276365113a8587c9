import assert from 'node:assert/strict'
import { QUEUE_PLACE_LEASE_MS } from '../acquire.js'
import { LockFactory } from '../lock_factory.js'
import { type Suite, sleep } from './context.js'

/** Locks on a queueing store, each on its own store object as in its own process. */
export function fairWaitingTests({ test, setup, createStore, capabilities }: Suite): void {
  if (!capabilities.waitQueue) return
  const factoryOn = async () =>
    new LockFactory(await createStore(), { retry: { delay: 10, timeout: 20_000 }, operationTimeout: 10_000 })

  test('five Locks on separate stores waiting on one key get it in the order they arrived', async () => {
    const { factory, key } = await setup()
    const holder = factory.createLock(key, '10s')
    assert.equal(await holder.acquire(), true)
    const order: number[] = []
    const runs: Promise<unknown>[] = []
    for (let i = 0; i < 5; i++) {
      const lock = (await factoryOn()).createLock(key, '10s')
      runs.push(lock.run(async () => void order.push(i)))
      // Each one's first attempt (which takes its place) reaches the store before the next starts.
      await sleep(100)
    }
    await holder.release()
    await Promise.all(runs)
    assert.deepEqual(order, [0, 1, 2, 3, 4])
  })

  test('a waiter that times out leaves the queue at once: the next does not wait out its place lease', async () => {
    const { factory, key } = await setup()
    const holder = factory.createLock(key, '10s')
    assert.equal(await holder.acquire(), true)
    const quitter = (await factoryOn()).createLock(key, '10s').acquire({ retry: { timeout: 200 } })
    await sleep(60)
    const next = (await factoryOn()).createLock(key, '10s')
    const waiting = next.acquire()
    assert.equal(await quitter, false)
    await sleep(50)
    const releasedAt = performance.now()
    await holder.release()
    assert.equal(await waiting, true)
    const waited = performance.now() - releasedAt
    assert.ok(
      waited < QUEUE_PLACE_LEASE_MS / 2,
      `the next waiter got the lock ${Math.round(waited)} ms after the release, as if the quitter still held its place`,
    )
    await next.release()
  })
}
