import assert from 'node:assert/strict'
import { QUEUE_PLACE_LEASE_MS } from '../acquire.js'
import { LockFactory } from '../lock_factory.js'
import type { LockStore } from '../store.js'
import { type Suite, sleep } from './context.js'

/**
 * The store, with a promise that settles once an acquire that asked to wait came back refused: from then on
 * the caller has its place in the queue. Every other method is the store's own.
 */
function watchPlace(store: LockStore): { store: LockStore; placed: Promise<void> } {
  let placed: () => void = () => {}
  const promise = new Promise<void>((resolve) => {
    placed = resolve
  })
  const watched = new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property)
      if (property === 'acquire') {
        return async (...args: Parameters<LockStore['acquire']>) => {
          const result = await target.acquire(...args)
          if (!result.acquired && args[3] !== undefined) placed()
          return result
        }
      }
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { store: watched, placed: promise }
}

/** Locks on a queueing store, each on its own store object as in its own process. */
export function fairWaitingTests({ test, setup, createStore, capabilities }: Suite): void {
  if (!capabilities.waitQueue) return
  const factoryOn = async (store?: LockStore) =>
    new LockFactory(store ?? (await createStore()), { retry: { delay: 10, timeout: 20_000 }, operationTimeout: 10_000 })

  test('five Locks on separate stores waiting on one key get it in the order they arrived', async () => {
    const { factory, key } = await setup()
    const holder = factory.createLock(key, '10s')
    assert.equal(await holder.acquire(), true)
    const order: number[] = []
    const runs: Promise<unknown>[] = []
    for (let i = 0; i < 5; i++) {
      const { store, placed } = watchPlace(await createStore())
      runs.push((await factoryOn(store)).createLock(key, '10s').run(async () => void order.push(i)))
      // Each one has its place in the queue before the next starts (a fixed pause was flaky under load).
      await placed
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
