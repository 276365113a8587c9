import assert from 'node:assert/strict'
import { E_LOCK_NOT_OWNED } from '../errors.js'
import type { Suite } from './context.js'

export function serializationTests({ test, setup }: Suite): void {
  test('a serialized lock restored elsewhere acts as the same owner', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    await lock.acquire()
    const restored = otherFactory.restoreLock(lock.serialize())
    assert.equal(restored.key, key)
    assert.equal(restored.getOwner(), lock.getOwner())
    assert.equal(restored.ttl, 10_000)
    assert.equal(restored.isExpired(), false)
    await restored.extend()
    await restored.release()
    assert.equal(await lock.isLocked(), false)
    await assert.rejects(lock.release(), E_LOCK_NOT_OWNED)
  })

  test('a restored lock can acquire with the same owner and ttl', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, null, { owner: 'shared-owner' })
    const restored = otherFactory.restoreLock(lock.serialize())
    assert.equal(restored.ttl, null)
    assert.equal(await restored.acquireImmediately(), true)
    await lock.release()
  })
}
