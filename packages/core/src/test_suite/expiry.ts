import assert from 'node:assert/strict'
import { E_LOCK_NOT_OWNED } from '../errors.js'
import { type Suite, sleep } from './context.js'

export function expiryTests({ test, setup, afterExpiry }: Suite): void {
  test('an expired lock belongs to nobody: anyone can take it over', async () => {
    const { factory, otherFactory, key } = await setup()
    const stale = factory.createLock(key, 150)
    await stale.acquire()
    await sleep(afterExpiry(150))
    assert.equal(await stale.isLocked(), false)
    const next = otherFactory.createLock(key, '10s')
    assert.equal(await next.acquireImmediately(), true)
    await next.release()
  })

  test('after a takeover the stale owner can neither release nor extend, and the new owner can', async () => {
    const { factory, otherFactory, key } = await setup()
    const stale = factory.createLock(key, 150)
    await stale.acquire()
    await sleep(afterExpiry(150))
    const next = otherFactory.createLock(key, '10s')
    assert.equal(await next.acquireImmediately(), true)

    await assert.rejects(stale.release(), E_LOCK_NOT_OWNED)
    await assert.rejects(stale.extend('10s'), E_LOCK_NOT_OWNED)
    assert.equal(await next.isLocked(), true)
    assert.equal(await factory.createLock(key).acquireImmediately(), false, 'still held by the new owner')

    await next.extend('10s')
    await next.release()
    assert.equal(await next.isLocked(), false)
  })

  test('the owner of an expired lock cannot release or extend it, even if nobody took it over', async () => {
    const { factory, key } = await setup()
    const lock = factory.createLock(key, 150)
    await lock.acquire()
    await sleep(afterExpiry(150))
    await assert.rejects(lock.extend('10s'), E_LOCK_NOT_OWNED)
    assert.equal(await lock.isLocked(), false, 'a refused extend must not revive the lease')
    await assert.rejects(lock.release(), E_LOCK_NOT_OWNED)
  })

  // The contract accepts any whole ttl up to Number.MAX_SAFE_INTEGER ms: a store whose date arithmetic or reply
  // encoding overflows on a long lease (a 2^53-1 ms lease once read as a garbled reply on MySQL) fails here.
  test('every ttl the contract accepts works, up to Number.MAX_SAFE_INTEGER ms', async () => {
    const { store, otherStore, key } = await setup()
    for (const [index, ttl] of [2 ** 31, 2 ** 40, 2 ** 52, Number.MAX_SAFE_INTEGER].entries()) {
      const lockKey = `${key}:${index}`
      const first = await store.acquire(lockKey, 'holder', ttl)
      assert.equal(first.acquired, true, `a ${ttl} ms lease is granted`)
      const refused = await otherStore.acquire(lockKey, 'rival', ttl)
      assert.equal(refused.acquired, false, `a ${ttl} ms lease is held against a rival`)
      if (!refused.acquired && refused.expiresIn !== undefined) {
        assert.ok(Number.isFinite(refused.expiresIn), `expiresIn is a finite number, got ${refused.expiresIn}`)
        // afterExpiry allows the driver's declared tolerance (DynamoDB adds its clock-skew allowance).
        assert.ok(refused.expiresIn <= afterExpiry(ttl), `expiresIn ${refused.expiresIn} is within the ${ttl} ms lease`)
        assert.ok(refused.expiresIn > 2 ** 31 - 120_000, `expiresIn ${refused.expiresIn} is not a small number`)
      }
      assert.equal(await otherStore.extend(lockKey, 'rival', ttl), false)
      assert.equal(await store.extend(lockKey, 'holder', ttl), true)
      assert.equal(await otherStore.isLocked(lockKey), true)
      assert.equal(await store.release(lockKey, 'holder'), true)
      const second = await otherStore.acquire(lockKey, 'rival', ttl)
      assert.ok(first.acquired && second.acquired && second.fencingToken > first.fencingToken, 'taken again, higher token')
      await otherStore.forceRelease(lockKey)
    }
  })

  // Margins are hundreds of ms: a loaded CI machine can stall a 150 ms sleep past a 300 ms lease.
  test('extend pushes the expiry out, measured from now', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, 1000)
    await lock.acquire()
    await sleep(300)
    await lock.extend('3s')
    await sleep(afterExpiry(1000))
    assert.equal(await lock.isLocked(), true, 'still held past the original ttl')
    assert.equal(await otherFactory.createLock(key).acquireImmediately(), false)
    await lock.release()
  })

  test('extend() without an argument renews the lock for its own ttl', async () => {
    const { factory, key } = await setup()
    const lock = factory.createLock(key, 1000)
    await lock.acquire()
    await sleep(500)
    await lock.extend()
    await sleep(700)
    assert.equal(await lock.isLocked(), true, '1.2 s after acquire, a renewed 1 s lease is still running')
    await sleep(afterExpiry(1000) - 700)
    assert.equal(await lock.isLocked(), false, 'and it ends one ttl after the renewal')
  })

  test('extend can shorten a lease', async () => {
    const { factory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    await lock.acquire()
    await lock.extend(150)
    await sleep(afterExpiry(150))
    assert.equal(await lock.isLocked(), false)
  })

  test('a lock with a null ttl never expires, until released', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, null)
    await lock.acquire()
    assert.equal(lock.getRemainingTime(), null)
    assert.equal(lock.isExpired(), false)
    await sleep(afterExpiry(300))
    assert.equal(await lock.isLocked(), true)
    assert.equal(await otherFactory.createLock(key).acquireImmediately(), false)
    assert.equal(lock.isExpired(), false)
    await lock.release()
    assert.equal(await lock.isLocked(), false)
  })

  test('extend(null) makes a lease permanent; extend(ttl) makes a permanent one expire', async () => {
    const { factory, key } = await setup()
    const lock = factory.createLock(key, 1000)
    await lock.acquire()
    await lock.extend(null)
    await sleep(afterExpiry(1000))
    assert.equal(await lock.isLocked(), true)
    await lock.extend(150)
    await sleep(afterExpiry(150))
    assert.equal(await lock.isLocked(), false)
  })

  test('local estimates: remaining time counts down and isExpired turns true', async () => {
    const { factory, key } = await setup()
    const lock = factory.createLock(key, 1000)
    assert.equal(lock.isExpired(), true, 'a lock not yet acquired has no lease')
    await lock.acquire()
    const remaining = lock.getRemainingTime()
    assert.ok(remaining !== null && remaining > 0 && remaining <= 1000, `remaining ${remaining}`)
    assert.equal(lock.isExpired(), false)
    await sleep(1050)
    assert.equal(lock.getRemainingTime(), 0)
    assert.equal(lock.isExpired(), true)
  })

  // expiresIn is milliseconds: a store reporting seconds (or microseconds) makes waiters sleep far too
  // little (or far too long) when they wait for the lease to end.
  test('a refused acquire tells the lease left in milliseconds, and nothing for a lease without expiry', async () => {
    const { store, factory, key } = await setup()
    const started = performance.now()
    await factory.createLock(key, '10s').acquire()
    const held = await store.acquire(key, 'someone-else', 1000)
    const elapsed = performance.now() - started
    assert.equal(held.acquired, false)
    if (!held.acquired && held.expiresIn !== undefined) {
      const least = 10_000 - elapsed - 1_000
      assert.ok(
        Number.isFinite(held.expiresIn) && held.expiresIn >= least && held.expiresIn <= afterExpiry(10_000),
        `expiresIn ${held.expiresIn} must be the ms left of a 10 s lease taken ${Math.round(elapsed)} ms ago`,
      )
    }
    await factory.createLock(`${key}:forever`, null).acquire()
    const forever = await store.acquire(`${key}:forever`, 'someone-else', 1000)
    assert.equal(forever.acquired, false)
    assert.equal(forever.acquired ? undefined : forever.expiresIn, undefined, 'a lease without expiry has no expiresIn')
  })

  test('a waiter gets a lock whose holder died, once its lease ends', async () => {
    const { factory, otherFactory, key } = await setup()
    await factory.createLock(key, 200).acquire()
    const waiter = otherFactory.createLock(key, '10s')
    assert.equal(await waiter.acquire({ retry: { timeout: '5s', delay: 50 } }), true)
    await waiter.release()
  })
}
