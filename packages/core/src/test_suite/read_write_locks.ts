import assert from 'node:assert/strict'
import { QUEUE_PLACE_LEASE_MS } from '../acquire.js'
import { E_LOCK_NOT_OWNED } from '../errors.js'
import { type Suite, sleep, waitFor } from './context.js'
import { noSharedLocksTest } from './semaphores.js'
import { assertIncreasing, CLOCK_SLACK_MS, LONG_TTL, SHORT_TTL_MS, watchedProcess } from './shared_support.js'

/**
 * Read-write locks through the public API (`createReadWriteLock`), two stores on one backend standing for two
 * processes: readers share, a writer excludes, writers are not starved, per-reader leases on the store's
 * clock, ownership, one fencing counter with semaphores, isLocked / forceRelease per side, serialization.
 */
export function readWriteLockTests(suite: Suite): void {
  const { test, setup, capabilities, afterExpiry } = suite
  if (!capabilities.sharedLocks) {
    noSharedLocksTest(suite, 'read-write locks')
    return
  }

  test('readers on two stores share the lock; a writer waits for them and then excludes everyone', async () => {
    const { factory, otherFactory, key } = await setup()
    const one = factory.createReadWriteLock(key, LONG_TTL)
    const two = otherFactory.createReadWriteLock(key, LONG_TTL)
    assert.equal(await one.read.acquireImmediately(), true)
    assert.equal(await two.read.acquireImmediately(), true, 'a second reader shares the lock')
    assert.equal(await two.write.acquireImmediately(), false, 'no writer beside readers')
    await one.read.release()
    assert.equal(await one.write.acquireImmediately(), false, 'no writer beside the remaining reader')
    await two.read.release()
    assert.equal(await one.write.acquireImmediately(), true)
    assert.equal(await two.read.acquireImmediately(), false, 'no reader beside the writer')
    assert.equal(await two.write.acquireImmediately(), false, 'no second writer')
    await one.write.release()
  })

  test('never a reader beside a writer, with six acquirers on two stores', async () => {
    const { factory, otherFactory, key } = await setup()
    let readers = 0
    let writers = 0
    const clashes: string[] = []
    const check = () => {
      if (writers > 1 || (writers === 1 && readers > 0)) clashes.push(`${writers} writers with ${readers} readers`)
    }
    const worker = async (index: number) => {
      const lock = (index % 2 === 0 ? factory : otherFactory).createReadWriteLock(key, LONG_TTL)
      const writes = index < 2
      for (let round = 0; round < 3; round++) {
        const [ran] = await (writes ? lock.write : lock.read).run(async () => {
          if (writes) writers += 1
          else readers += 1
          check()
          await sleep(10)
          check()
          if (writes) writers -= 1
          else readers -= 1
        })
        assert.equal(ran, true, `acquirer ${index} got the lock`)
      }
    }
    await Promise.all(Array.from({ length: 6 }, (_, index) => worker(index)))
    assert.deepEqual(clashes, [])
  })

  test('once a writer waits, readers that come later wait behind it', async () => {
    const { factory, otherFactory, key } = await setup()
    const first = factory.createReadWriteLock(key, LONG_TTL)
    assert.equal(await first.read.acquire(), true)
    const order: string[] = []
    const writer = await watchedProcess(suite)
    const writing = writer.factory.createReadWriteLock(key, LONG_TTL).write.run(async () => {
      order.push('write')
      await sleep(20)
    })
    await writer.placed
    const late = otherFactory.createReadWriteLock(key, LONG_TTL)
    assert.equal(await late.read.acquireImmediately(), false, 'a new reader would starve the waiting writer')
    assert.equal(await late.read.isLocked(), false, 'isLocked on read counts a writer that holds, not one that waits')
    const reading = late.read.run(() => void order.push('read'))
    await sleep(30)
    assert.deepEqual(order, [], 'nobody got in while the first reader held')
    await first.read.release()
    await Promise.all([writing, reading])
    assert.deepEqual(order, ['write', 'read'])
  })

  test('the readers waiting at the head are all admitted together when the writer releases', async () => {
    const { factory, key } = await setup()
    const writer = factory.createReadWriteLock(key, LONG_TTL)
    assert.equal(await writer.write.acquire(), true)
    let inside = 0
    const runs: Promise<unknown>[] = []
    for (let i = 0; i < 3; i++) {
      const reader = await watchedProcess(suite)
      runs.push(
        reader.factory.createReadWriteLock(key, LONG_TTL).read.run(async () => {
          inside += 1
          // Every reader stays until all three are in: they must hold the lock at the same time.
          await waitFor(() => inside === 3, 'the three readers all hold the lock')
        }),
      )
      await reader.placed
    }
    await writer.write.release()
    await Promise.all(runs)
    assert.equal(inside, 3)
  })

  test('an aborted waiting writer does not hold up the readers behind it', async () => {
    const { factory, otherFactory, key } = await setup()
    const holder = factory.createReadWriteLock(key, LONG_TTL)
    assert.equal(await holder.read.acquire(), true)
    const writer = await watchedProcess(suite)
    const controller = new AbortController()
    const writing = writer.factory.createReadWriteLock(key, LONG_TTL).write.acquire({ signal: controller.signal })
    await writer.placed
    const reader = await watchedProcess(suite)
    const late = reader.factory.createReadWriteLock(key, LONG_TTL).read
    const reading = late.acquire()
    await reader.placed
    const abortedAt = performance.now()
    controller.abort(new Error('gave up'))
    await assert.rejects(writing, /gave up/)
    assert.equal(await reading, true)
    const waited = performance.now() - abortedAt
    assert.ok(
      waited < QUEUE_PLACE_LEASE_MS / 2,
      `the reader got in ${Math.round(waited)} ms after the writer gave up, as if it still held its place`,
    )
    assert.equal(await otherFactory.createReadWriteLock(key).write.isLocked(), true)
    await late.release()
    await holder.read.release()
  })

  test("each reader's lease ends on the store's clock: a writer gets in then, not sooner, not much later", async () => {
    const { factory, otherFactory, key } = await setup()
    const crashed = factory.createReadWriteLock(key, SHORT_TTL_MS)
    const sentAt = performance.now()
    assert.equal(await crashed.read.acquire(), true)
    const writer = otherFactory.createReadWriteLock(key, LONG_TTL)
    assert.equal(await writer.write.acquire(), true)
    const waited = performance.now() - sentAt
    assert.ok(waited >= SHORT_TTL_MS - CLOCK_SLACK_MS, `a ${SHORT_TTL_MS} ms reader was gone after ${Math.round(waited)} ms`)
    const bound = afterExpiry(SHORT_TTL_MS) + 1_000
    assert.ok(waited <= bound, `a ${SHORT_TTL_MS} ms reader was gone only after ${Math.round(waited)} ms`)
    await writer.write.release()
  })

  test('a stale reader or writer can neither release nor extend once its lease ended and the lock was granted again', async () => {
    const { factory, otherFactory, key } = await setup()
    const stale = factory.createReadWriteLock(key, SHORT_TTL_MS)
    const next = otherFactory.createReadWriteLock(key, LONG_TTL)
    assert.equal(await stale.read.acquire(), true)
    await assert.rejects(next.read.release(), E_LOCK_NOT_OWNED, 'another owner cannot release a reader')
    await assert.rejects(stale.write.release(), E_LOCK_NOT_OWNED, 'a reader is not a writer')
    await sleep(afterExpiry(SHORT_TTL_MS))
    assert.equal(await next.write.acquireImmediately(), true)
    await assert.rejects(stale.read.release(), E_LOCK_NOT_OWNED)
    await assert.rejects(stale.read.extend(LONG_TTL), E_LOCK_NOT_OWNED)
    assert.equal(await stale.read.isLocked(), true, 'the writer still holds')
    await next.write.release()

    assert.equal(await stale.write.acquire(), true)
    await sleep(afterExpiry(SHORT_TTL_MS))
    assert.equal(await next.read.acquireImmediately(), true)
    await assert.rejects(stale.write.release(), E_LOCK_NOT_OWNED)
    await assert.rejects(stale.write.extend(LONG_TTL), E_LOCK_NOT_OWNED)
    assert.equal(await stale.write.isLocked(), true, 'the reader still holds')
    await next.read.release()
  })

  test('fencing tokens strictly increase across permits, reads and writes of one key, on both stores', async () => {
    const { factory, otherFactory, key } = await setup()
    const tokens: (number | undefined)[] = []
    const permit = factory.createSemaphore(key, { limit: 2, ttl: LONG_TTL })
    const reader = otherFactory.createReadWriteLock(key, LONG_TTL)
    const writer = factory.createReadWriteLock(key, SHORT_TTL_MS)
    assert.equal(await permit.acquire(), true)
    tokens.push(permit.fencingToken)
    assert.equal(await reader.read.acquire(), true, 'a permit counts as a reader')
    tokens.push(reader.read.fencingToken)
    await permit.release()
    await reader.read.release()
    assert.equal(await writer.write.acquire(), true)
    tokens.push(writer.write.fencingToken)
    // The writer's lease runs out rather than being released.
    const afterWriter = otherFactory.createSemaphore(key, { limit: 1, ttl: LONG_TTL })
    assert.equal(await afterWriter.acquire(), true)
    tokens.push(afterWriter.fencingToken)
    await reader.read.forceRelease()
    assert.equal(await writer.read.acquire(), true)
    tokens.push(writer.read.fencingToken)
    await writer.read.release()
    assert.equal(await reader.write.acquire(), true)
    tokens.push(reader.write.fencingToken)
    await reader.write.release()
    assertIncreasing(tokens, 'permit, read, write, permit after expiry, read after force release, write')
  })

  test('isLocked and forceRelease act per side', async () => {
    const { factory, otherFactory, key } = await setup()
    const one = factory.createReadWriteLock(key, LONG_TTL)
    const two = otherFactory.createReadWriteLock(key, LONG_TTL)
    assert.equal(await one.read.isLocked(), false)
    assert.equal(await one.write.isLocked(), false)
    await one.read.acquire()
    await two.read.acquire()
    assert.equal(await one.read.isLocked(), false, 'read: only a writer locks it')
    assert.equal(await one.write.isLocked(), true, 'write: anyone holding locks it')
    await two.write.forceRelease()
    await one.read.extend()
    await two.read.extend()
    await one.read.forceRelease()
    assert.equal(await two.write.isLocked(), false, 'every reader was released')
    await assert.rejects(two.read.release(), E_LOCK_NOT_OWNED)
    await one.write.acquire()
    assert.equal(await two.read.isLocked(), true)
    await two.read.forceRelease()
    await one.write.extend()
    await two.write.forceRelease()
    assert.equal(await two.read.isLocked(), false, 'the writer was released')
    await assert.rejects(one.write.release(), E_LOCK_NOT_OWNED)
  })

  test('a mutex and a read-write lock with the same key do not exclude each other', async () => {
    const { factory, otherFactory, key } = await setup()
    const mutex = factory.createLock(key, LONG_TTL)
    assert.equal(await mutex.acquire(), true)
    const doc = otherFactory.createReadWriteLock(key, LONG_TTL)
    assert.equal(await doc.write.acquireImmediately(), true)
    assert.equal(await mutex.isLocked(), true)
    await doc.write.release()
    assert.equal(await mutex.isLocked(), true, 'releasing the writer left the mutex alone')
    await mutex.release()
  })

  test('a read or a write restored by the other store is that side, and releases it', async () => {
    const { factory, otherFactory, key } = await setup()
    const doc = factory.createReadWriteLock(key, LONG_TTL)
    for (const side of [doc.read, doc.write]) {
      assert.equal(await side.acquire(), true)
      const restored = otherFactory.restoreLock(side.serialize())
      assert.equal(restored.kind, side.kind)
      assert.equal(restored.getOwner(), side.getOwner())
      await restored.extend()
      await restored.release()
      assert.equal(await otherFactory.createReadWriteLock(key).write.isLocked(), false, `the ${side.kind} was released`)
      await assert.rejects(side.release(), E_LOCK_NOT_OWNED)
    }
  })

  test('write.run with autoExtend keeps a short writer through longer work', async () => {
    const { factory, otherFactory, key } = await setup()
    const doc = factory.createReadWriteLock(key, 1_000)
    const reader = otherFactory.createReadWriteLock(key, LONG_TTL)
    const [ran] = await doc.write.run(
      async ({ signal }) => {
        await sleep(1_200)
        assert.equal(await reader.read.acquireImmediately(), false, 'the writer still holds past its first lease')
        await sleep(200)
        assert.equal(signal.aborted, false)
      },
      { autoExtend: true },
    )
    assert.equal(ran, true)
    assert.equal(await reader.read.acquireImmediately(), true, 'released after run')
    await reader.read.release()
  })
}
