import assert from 'node:assert/strict'
import { LockFactory } from '../lock_factory.js'
import { countingStore, type Suite } from './context.js'

/** How many calls reach the store: the retry options' promises, counted on the real backend. */
export function attemptTests({ test, setup }: Suite): void {
  test('attempts: 1 is exactly one attempt; attempts: n is at most n', async () => {
    const { store, factory, key } = await setup()
    await factory.createLock(key, '10s').acquire()
    for (const attempts of [1, 3]) {
      const counted = countingStore(store)
      const lock = new LockFactory(counted.store).createLock(key, '10s')
      assert.equal(await lock.acquire({ retry: { attempts, delay: 1 } }), false)
      assert.equal(counted.calls(), attempts)
    }
    const counted = countingStore(store)
    assert.equal(await new LockFactory(counted.store).createLock(key).acquireImmediately(), false)
    assert.equal(counted.calls(), 1)
  })
}
