import assert from 'node:assert/strict'
import { type Suite, sleep } from './context.js'

export function fencingTests({ test, setup, afterExpiry }: Suite): void {
  test('fencing tokens strictly increase across release, expiry, force release and owners', async () => {
    const { factory, otherFactory, key } = await setup()
    const tokens: number[] = []
    const take = async (lock: ReturnType<typeof factory.createLock>) => {
      assert.equal(await lock.acquireImmediately(), true)
      assert.ok(Number.isSafeInteger(lock.fencingToken) && lock.fencingToken! > 0, `token ${lock.fencingToken}`)
      tokens.push(lock.fencingToken!)
      return lock
    }

    await (await take(factory.createLock(key, '10s'))).release()
    await (await take(otherFactory.createLock(key, '10s'))).release()
    await take(factory.createLock(key, 100))
    await sleep(afterExpiry(100))
    await take(otherFactory.createLock(key, '10s'))
    await otherFactory.createLock(key).forceRelease()
    const same = await take(factory.createLock(key, '10s', { owner: 'same-owner' }))
    await same.release()
    await (await take(factory.createLock(key, '10s', { owner: 'same-owner' }))).release()

    for (let i = 1; i < tokens.length; i++) {
      assert.ok(tokens[i]! > tokens[i - 1]!, `tokens must increase: ${tokens.join(', ')}`)
    }
  })

  test('a stale holder is exposed by its lower fencing token', async () => {
    const { factory, otherFactory, key } = await setup()
    const stale = factory.createLock(key, 100)
    await stale.acquire()
    await sleep(afterExpiry(100))
    const current = otherFactory.createLock(key, '10s')
    await current.acquire()
    assert.ok(stale.fencingToken! < current.fencingToken!)
    await current.release()
  })

  test('the token survives serialization and stays the same through extend', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, '10s')
    await lock.acquire()
    const token = lock.fencingToken
    await lock.extend()
    assert.equal(lock.fencingToken, token)
    assert.equal(otherFactory.restoreLock(lock.serialize()).fencingToken, token)
    await lock.release()
  })

  test('concurrent acquisitions of one key never hand out the same token twice', async () => {
    const { factory, otherFactory, key } = await setup()
    const seen: number[] = []
    const worker = async (i: number) => {
      for (let round = 0; round < 5; round++) {
        const lock = (i % 2 ? factory : otherFactory).createLock(key, '10s')
        await lock.acquire({ retry: { delay: 2, timeout: '20s' } })
        seen.push(lock.fencingToken!)
        await lock.release()
      }
    }
    await Promise.all(Array.from({ length: 6 }, (_, i) => worker(i)))
    assert.equal(new Set(seen).size, seen.length, 'tokens are unique')
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, 'in the order the lock was held')
  })
}

/** How long a key sits free before it is taken again: longer than a "couple of seconds" clean-up. */
const IDLE_MS = 2_500

/**
 * A store may drop what it keeps per free key (its footprint must stay bounded), but the next holder's
 * token must still be higher than every token handed out before. This catches a store that forgets within
 * a couple of seconds; a store whose grace is longer and configurable should also run the suite with that
 * grace shortened below `IDLE_MS`, so the forgetting path itself is exercised here.
 */
export function fencingAfterIdleTests({ test, setup, afterExpiry }: Suite): void {
  test('tokens keep increasing after the key sat free (released, expired or force-released)', async () => {
    const { factory, otherFactory, key } = await setup()
    const ways = {
      released: async (name: string) => {
        const lock = factory.createLock(name, '10s')
        await lock.acquire()
        await lock.release()
        return lock.fencingToken!
      },
      expired: async (name: string) => {
        const lock = factory.createLock(name, 100)
        await lock.acquire()
        return lock.fencingToken!
      },
      'force-released': async (name: string) => {
        const lock = factory.createLock(name, '10s')
        await lock.acquire()
        await otherFactory.createLock(name).forceRelease()
        return lock.fencingToken!
      },
    }
    const entries = Object.entries(ways)
    const before = new Map<string, number>()
    // Each key is taken a few times first, so a counter that restarts lands clearly below the last token.
    for (const [way, free] of entries) {
      for (let round = 0; round < 3; round++) {
        const name = `${key}:${way}`
        before.set(way, round < 2 ? await ways.released(name) : await free(name))
      }
    }
    await sleep(IDLE_MS + afterExpiry(100))
    for (const [way] of entries) {
      const next = otherFactory.createLock(`${key}:${way}`, '10s')
      assert.equal(await next.acquireImmediately(), true, `${way} key is free again`)
      assert.ok(
        next.fencingToken! > before.get(way)!,
        `${way}: token ${next.fencingToken} after ${IDLE_MS} ms idle must exceed the last one, ${before.get(way)}`,
      )
      await next.release()
    }
  })
}
