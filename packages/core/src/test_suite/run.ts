import assert from 'node:assert/strict'
import { E_LOCK_LOST } from '../errors.js'
import type { Suite } from './context.js'

export function runTests({ test, setup }: Suite): void {
  test('run returns [true, result] for sync and async callbacks and releases afterwards', async () => {
    const { factory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    const [ran, value] = await lock.run(() => 42)
    assert.equal(ran, true)
    assert.equal(value, 42)
    assert.equal(await lock.isLocked(), false)
    const [ranAsync, text] = await lock.run(async () => {
      assert.equal(await lock.isLocked(), true, 'held during the callback')
      return 'done'
    })
    assert.deepEqual([ranAsync, text], [true, 'done'])
    assert.equal(await lock.isLocked(), false)
  })

  test('run returns [false, null] without calling back when the lock stays held', async () => {
    const { factory, otherFactory, key } = await setup()
    const holder = factory.createLock(key, '10s')
    await holder.acquire()
    let called = false
    const result = await otherFactory.createLock(key).run(
      () => {
        called = true
      },
      { retry: { attempts: 2, delay: 5 } },
    )
    assert.deepEqual(result, [false, null])
    assert.equal(called, false)
    assert.deepEqual(await otherFactory.createLock(key).runImmediately(() => 1), [false, null])
    await holder.release()
  })

  test('runImmediately runs when the lock is free', async () => {
    const { factory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    assert.deepEqual(await lock.runImmediately(async () => 'ok'), [true, 'ok'])
    assert.equal(await lock.isLocked(), false)
  })

  test('a callback error is rethrown and the lock is still released', async () => {
    const { factory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    const failure = new Error('job failed')
    await assert.rejects(
      lock.run(() => {
        throw failure
      }),
      (error) => error === failure,
    )
    assert.equal(await lock.isLocked(), false)
  })

  test('a failed release never hides the callback error', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    const failure = new Error('job failed')
    await assert.rejects(
      lock.run(async () => {
        await otherFactory.createLock(key).forceRelease()
        throw failure
      }),
      (error) => error === failure,
    )
  })

  test('when the lease was lost during the callback, run reports it', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    await assert.rejects(
      lock.run(async () => {
        await otherFactory.createLock(key).forceRelease()
        return 'finished without exclusion'
      }),
      E_LOCK_LOST,
    )
  })
}
