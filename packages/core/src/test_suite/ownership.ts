import assert from 'node:assert/strict'
import { E_LOCK_NOT_OWNED } from '../errors.js'
import type { Suite } from './context.js'

export function ownershipTests({ test, setup }: Suite): void {
  test('acquires a free lock, and nobody else can while it is held', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    assert.equal(await lock.acquireImmediately(), true)
    assert.equal(await lock.isLocked(), true)
    assert.equal(await factory.createLock(key).acquireImmediately(), false)
    assert.equal(await otherFactory.createLock(key).acquireImmediately(), false)
    await lock.release()
  })

  test('is not re-entrant: the holder acquiring again gets false', async () => {
    const { factory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    assert.equal(await lock.acquireImmediately(), true)
    assert.equal(await lock.acquireImmediately(), false)
    assert.equal(await lock.acquire({ retry: { attempts: 2, delay: 5 } }), false)
    await lock.release()
  })

  test('release frees the lock for the next acquirer', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    await lock.acquire()
    await lock.release()
    assert.equal(await lock.isLocked(), false)
    const next = otherFactory.createLock(key, '10s')
    assert.equal(await next.acquireImmediately(), true)
    await next.release()
  })

  test('only the owner can release: another owner gets E_LOCK_NOT_OWNED and the lock stays held', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    await lock.acquire()
    const intruder = otherFactory.createLock(key, '10s')
    await assert.rejects(intruder.release(), E_LOCK_NOT_OWNED)
    await assert.rejects(factory.createLock(key).release(), (error: unknown) => {
      assert.ok(error instanceof E_LOCK_NOT_OWNED)
      assert.equal(error.code, 'E_LOCK_NOT_OWNED')
      return true
    })
    assert.equal(await lock.isLocked(), true)
    assert.equal(await intruder.acquireImmediately(), false)
    await lock.release()
  })

  test('releasing a lock that was never acquired, or twice, is E_LOCK_NOT_OWNED', async () => {
    const { factory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    await assert.rejects(lock.release(), E_LOCK_NOT_OWNED)
    await lock.acquire()
    await lock.release()
    await assert.rejects(lock.release(), E_LOCK_NOT_OWNED)
  })

  test('only the owner can extend', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    await assert.rejects(lock.extend(), E_LOCK_NOT_OWNED)
    await lock.acquire()
    await assert.rejects(otherFactory.createLock(key, '10s').extend(), E_LOCK_NOT_OWNED)
    await lock.extend()
    await lock.release()
  })

  test('two locks created with the same owner are the same lock', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, '10s', { owner: 'worker-42' })
    await lock.acquire()
    const twin = otherFactory.createLock(key, '10s', { owner: 'worker-42' })
    assert.equal(twin.getOwner(), 'worker-42')
    await twin.extend()
    await twin.release()
    assert.equal(await lock.isLocked(), false)
  })

  test('owners that look like numbers, JSON or whitespace are kept exactly', async () => {
    const { factory, otherFactory, key } = await setup()
    for (const owner of ['123', '1e3', '007', 'null', 'true', '{"a":1}', ' spaced ']) {
      const lock = factory.createLock(`${key}:${owner}`, '10s', { owner })
      await lock.acquire()
      // A near-miss owner must not be able to release it.
      const nearMiss = otherFactory.createLock(`${key}:${owner}`, '10s', { owner: owner === '123' ? '0123' : `${owner}x` })
      await assert.rejects(nearMiss.release(), E_LOCK_NOT_OWNED)
      await otherFactory.createLock(`${key}:${owner}`, '10s', { owner }).release()
    }
  })

  test('force release frees a lock whoever holds it; the former holder is no longer owner', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    await lock.acquire()
    await otherFactory.createLock(key).forceRelease()
    assert.equal(await lock.isLocked(), false)
    const next = otherFactory.createLock(key, '10s')
    assert.equal(await next.acquireImmediately(), true)
    await assert.rejects(lock.release(), E_LOCK_NOT_OWNED)
    await assert.rejects(lock.extend(), E_LOCK_NOT_OWNED)
    assert.equal(await next.isLocked(), true)
    await next.release()
    await otherFactory.createLock(`${key}:free`).forceRelease()
  })

  test('keys are case-sensitive and exact', async () => {
    const { factory, key } = await setup()
    const upper = factory.createLock(`${key}:Foo`, '10s')
    const lower = factory.createLock(`${key}:foo`, '10s')
    const spaced = factory.createLock(`${key}:foo `, '10s')
    assert.equal(await upper.acquireImmediately(), true)
    assert.equal(await lower.acquireImmediately(), true)
    assert.equal(await spaced.acquireImmediately(), true)
    await Promise.all([upper.release(), lower.release(), spaced.release()])
  })

  test('keys with unusual characters work', async () => {
    const { factory, otherFactory, key } = await setup()
    const keys = [
      `${key}:'; DROP TABLE locks; --`,
      `${key}:"quoted" \\ back\\slash`,
      `${key}:%_*?[]{hash}`,
      `${key}:ünïcødé 🔒 ключ 鍵`,
      `${key}:${'long'.repeat(300)}`,
      `${key}:tab\tnew\nline`,
    ]
    for (const name of keys) {
      const lock = factory.createLock(name, '10s')
      assert.equal(await lock.acquireImmediately(), true, `acquire ${JSON.stringify(name.slice(0, 60))}`)
      assert.equal(await otherFactory.createLock(name).acquireImmediately(), false)
      assert.equal(await otherFactory.createLock(name).isLocked(), true)
      await lock.release()
      assert.equal(await otherFactory.createLock(name).isLocked(), false)
    }
  })

  // A driver that cuts keys to a column width, or hashes only part of a key, merges these into one lock.
  test('keys that share a long prefix are different locks', async () => {
    const { factory, otherFactory, key } = await setup()
    const prefix = `${key}:${'p'.repeat(1_200)}`
    const middle = 'm'.repeat(600)
    const names = [`${prefix}a`, `${prefix}b`, `${prefix}ab`, prefix, `${key}:${middle}x${middle}`, `${key}:${middle}y${middle}`]
    const locks = names.map((name) => factory.createLock(name, '10s'))
    for (const [i, lock] of locks.entries()) {
      assert.equal(await lock.acquireImmediately(), true, `key ${i} is free although keys before it are held`)
    }
    await locks[0]!.release()
    for (const [i, name] of names.entries()) {
      assert.equal(await otherFactory.createLock(name).isLocked(), i !== 0, `key ${i} after releasing key 0`)
    }
    for (const lock of locks.slice(1)) await lock.release()
  })
}
