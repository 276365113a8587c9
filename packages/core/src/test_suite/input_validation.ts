import assert from 'node:assert/strict'
import { E_INVALID_ARGUMENT } from '../errors.js'
import { LockFactory } from '../lock_factory.js'
import { countingStore, type Suite } from './context.js'

export function inputValidationTests({ test, setup }: Suite): void {
  test('bad keys, ttls and owners are rejected before reaching the store', async () => {
    const { store, key } = await setup()
    const counted = countingStore(store)
    const factory = new LockFactory(counted.store)
    for (const badKey of ['', undefined, null, 42, 'half \uD800 a pair', '\uDC00', Object.create(null)]) {
      assert.throws(() => factory.createLock(badKey as string), E_INVALID_ARGUMENT)
    }
    for (const badTtl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 'soon', '', '-5s', '0s']) {
      assert.throws(() => factory.createLock(key, badTtl as number), E_INVALID_ARGUMENT, `ttl ${String(badTtl)}`)
    }
    assert.throws(() => factory.createLock(key, '10s', { owner: '' }), E_INVALID_ARGUMENT)
    assert.throws(() => factory.createLock(key, '10s', { owner: 'half \uD800 a pair' }), E_INVALID_ARGUMENT)
    assert.equal(counted.calls(), 0)
  })

  test('bad retry options and extend durations are rejected before reaching the store', async () => {
    const { store, key } = await setup()
    const counted = countingStore(store)
    const lock = new LockFactory(counted.store).createLock(key, '10s')
    const badRetries = [
      { attempts: 0 },
      { attempts: -1 },
      { attempts: 1.5 },
      { attempts: Number.NaN },
      { timeout: -1 },
      { timeout: Number.NaN },
      { timeout: 'later' },
      { delay: -10 },
      { delay: Number.NaN },
    ]
    for (const retry of badRetries) {
      await assert.rejects(lock.acquire({ retry: retry as never }), E_INVALID_ARGUMENT, JSON.stringify(retry))
      await assert.rejects(
        lock.run(() => 1, { retry: retry as never }),
        E_INVALID_ARGUMENT,
      )
    }
    for (const ttl of [0, -1, Number.NaN, 'nope']) {
      await assert.rejects(lock.extend(ttl as number), E_INVALID_ARGUMENT)
    }
    assert.equal(counted.calls(), 0)
  })

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
