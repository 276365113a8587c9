import assert from 'node:assert/strict'
import { E_INVALID_ARGUMENT, E_LOCK_NOT_OWNED } from '../errors.js'
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

  test('malformed serialized locks are rejected with E_INVALID_ARGUMENT', async () => {
    const { factory, key } = await setup()
    const valid = JSON.parse(factory.createLock(key, '10s').serialize()) as Record<string, unknown>
    const inputs: unknown[] = [
      '',
      'not json',
      '[]',
      'null',
      '42',
      '{}',
      JSON.stringify({ ...valid, v: 99 }),
      JSON.stringify({ ...valid, key: '' }),
      JSON.stringify({ ...valid, key: 7 }),
      JSON.stringify({ ...valid, owner: '' }),
      JSON.stringify({ ...valid, ttl: -5 }),
      JSON.stringify({ ...valid, ttl: 'soon' }),
      JSON.stringify({ ...valid, fencingToken: 1.5 }),
      JSON.stringify({ ...valid, held: 'yes' }),
      undefined,
      42,
    ]
    for (const input of inputs) {
      assert.throws(() => factory.restoreLock(input as string), E_INVALID_ARGUMENT, `input ${String(input)}`)
    }
  })
}
