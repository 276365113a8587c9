import assert from 'node:assert/strict'
import { QUEUE_PLACE_LEASE_MS } from '../acquire.js'
import { E_INVALID_ARGUMENT, E_LOCK_NOT_OWNED } from '../errors.js'
import { type Suite, sleep } from './context.js'
import { CLOCK_SLACK_MS, LONG_TTL, SHORT_TTL_MS, watchedProcess } from './shared_support.js'

/** The store has no `shared` when it declared `sharedLocks: false`: one test, shared by both groups. */
export function noSharedLocksTest({ test, setup }: Suite, what: string): void {
  test(`declared without shared locks: the store has no "shared", so no ${what}`, async () => {
    const { store, factory, key } = await setup()
    assert.equal(store.shared, undefined)
    const create =
      what === 'semaphores' ? () => factory.createSemaphore(key, { limit: 1 }) : () => factory.createReadWriteLock(key)
    assert.throws(create, E_INVALID_ARGUMENT)
  })
}

/**
 * Counting semaphores through the public API (`createSemaphore`), two stores on one backend standing for two
 * processes: the limit, whose limit counts, per-permit leases on the store's clock, ownership, FIFO waiting,
 * isLocked / forceRelease, serialization and run.
 */
export function semaphoreTests(suite: Suite): void {
  const { test, setup, capabilities, afterExpiry } = suite
  if (!capabilities.sharedLocks) {
    noSharedLocksTest(suite, 'semaphores')
    return
  }

  test('never more than limit permits are held, with eight acquirers on two stores', async () => {
    const { factory, otherFactory, key } = await setup()
    let inside = 0
    let most = 0
    const worker = async (index: number) => {
      const permit = (index % 2 === 0 ? factory : otherFactory).createSemaphore(key, { limit: 3, ttl: LONG_TTL })
      for (let round = 0; round < 2; round++) {
        const [ran] = await permit.run(async () => {
          inside += 1
          most = Math.max(most, inside)
          await sleep(15)
          inside -= 1
        })
        assert.equal(ran, true, `acquirer ${index} got a permit`)
      }
    }
    await Promise.all(Array.from({ length: 8 }, (_, index) => worker(index)))
    assert.ok(most <= 3, `${most} permits were held at once with a limit of 3`)
    assert.equal(await factory.createSemaphore(key, { limit: 1 }).isLocked(), false, 'every permit was released')
  })

  test('each acquirer is held to its own limit: a larger limit is granted beside holders a smaller one refuses', async () => {
    const { factory, otherFactory, key } = await setup()
    const first = factory.createSemaphore(key, { limit: 1, ttl: LONG_TTL })
    assert.equal(await first.acquireImmediately(), true)
    assert.equal(await otherFactory.createSemaphore(key, { limit: 1, ttl: LONG_TTL }).acquireImmediately(), false)
    const wider = otherFactory.createSemaphore(key, { limit: 2, ttl: LONG_TTL })
    assert.equal(await wider.acquireImmediately(), true, 'limit 2 with one permit held')
    assert.equal(await factory.createSemaphore(key, { limit: 2, ttl: LONG_TTL }).acquireImmediately(), false)
    assert.equal(await factory.createSemaphore(key, { limit: 2 }).isLocked(), true, 'both of 2 permits are taken')
    assert.equal(await factory.createSemaphore(key, { limit: 3 }).isLocked(), false, '2 of 3 permits are taken')
    await first.release()
    await wider.release()
  })

  test("each permit's lease ends on the store's clock: its slot frees then, not sooner, not much later", async () => {
    const { factory, otherFactory, key } = await setup()
    const crashed = factory.createSemaphore(key, { limit: 2, ttl: SHORT_TTL_MS })
    const alive = factory.createSemaphore(key, { limit: 2, ttl: LONG_TTL })
    const sentAt = performance.now()
    assert.equal(await crashed.acquireImmediately(), true)
    assert.equal(await alive.acquireImmediately(), true)
    const next = otherFactory.createSemaphore(key, { limit: 2, ttl: LONG_TTL })
    assert.equal(await next.acquire(), true)
    const waited = performance.now() - sentAt
    assert.ok(
      waited >= SHORT_TTL_MS - CLOCK_SLACK_MS,
      `the slot of a ${SHORT_TTL_MS} ms permit was free after ${Math.round(waited)} ms`,
    )
    const bound = afterExpiry(SHORT_TTL_MS) + 1_000
    assert.ok(waited <= bound, `the slot of a ${SHORT_TTL_MS} ms permit was free only after ${Math.round(waited)} ms`)
    // One slot freed, not two: the other permit keeps its own lease.
    assert.equal(await otherFactory.createSemaphore(key, { limit: 2 }).acquireImmediately(), false)
    await alive.release()
    await next.release()
  })

  test('only the owner releases or extends; a stale owner cannot once its permit expired and was granted again', async () => {
    const { factory, otherFactory, key } = await setup()
    const stale = factory.createSemaphore(key, { limit: 1, ttl: SHORT_TTL_MS })
    assert.equal(await stale.acquire(), true)
    await stale.extend(SHORT_TTL_MS)
    const stranger = otherFactory.createSemaphore(key, { limit: 1, ttl: LONG_TTL })
    await assert.rejects(stranger.release(), E_LOCK_NOT_OWNED)
    await assert.rejects(stranger.extend(), E_LOCK_NOT_OWNED)
    await sleep(afterExpiry(SHORT_TTL_MS))
    assert.equal(await stranger.acquireImmediately(), true, 'the expired permit no longer counts')
    await assert.rejects(stale.release(), E_LOCK_NOT_OWNED)
    await assert.rejects(stale.extend(LONG_TTL), E_LOCK_NOT_OWNED)
    assert.equal(await stranger.isLocked(), true, 'the new holder still holds')
    await stranger.extend()
    await stranger.release()
  })

  test('waiters get permits in the order they arrived, across stores', async () => {
    const { factory, key } = await setup()
    const holder = factory.createSemaphore(key, { limit: 1, ttl: LONG_TTL })
    assert.equal(await holder.acquire(), true)
    const order: number[] = []
    const runs: Promise<unknown>[] = []
    for (let i = 0; i < 4; i++) {
      const { factory: process, placed } = await watchedProcess(suite)
      runs.push(process.createSemaphore(key, { limit: 1, ttl: LONG_TTL }).run(() => void order.push(i)))
      // Each has its place before the next starts.
      await placed
    }
    await holder.release()
    await Promise.all(runs)
    assert.deepEqual(order, [0, 1, 2, 3])
  })

  test('an aborted waiter does not hold up the next', async () => {
    const { factory, key } = await setup()
    const holder = factory.createSemaphore(key, { limit: 1, ttl: LONG_TTL })
    assert.equal(await holder.acquire(), true)
    const quitter = await watchedProcess(suite)
    const controller = new AbortController()
    const quitting = quitter.factory.createSemaphore(key, { limit: 1, ttl: LONG_TTL }).acquire({ signal: controller.signal })
    await quitter.placed
    const patient = await watchedProcess(suite)
    const next = patient.factory.createSemaphore(key, { limit: 1, ttl: LONG_TTL })
    const waiting = next.acquire()
    await patient.placed
    controller.abort(new Error('gave up'))
    await assert.rejects(quitting, /gave up/)
    const releasedAt = performance.now()
    await holder.release()
    assert.equal(await waiting, true)
    const waited = performance.now() - releasedAt
    assert.ok(
      waited < QUEUE_PLACE_LEASE_MS / 2,
      `the next waiter got a permit ${Math.round(waited)} ms after the release, as if the aborted one still held its place`,
    )
    await next.release()
  })

  test('isLocked says whether every permit is taken; forceRelease frees every permit', async () => {
    const { factory, otherFactory, key } = await setup()
    const first = factory.createSemaphore(key, { limit: 2, ttl: LONG_TTL })
    const second = otherFactory.createSemaphore(key, { limit: 2, ttl: LONG_TTL })
    assert.equal(await first.isLocked(), false)
    assert.equal(await first.acquire(), true)
    assert.equal(await first.isLocked(), false, 'one of two permits taken')
    assert.equal(await second.acquire(), true)
    assert.equal(await first.isLocked(), true, 'both permits taken')
    await otherFactory.createSemaphore(key, { limit: 2 }).forceRelease()
    assert.equal(await first.isLocked(), false)
    await assert.rejects(first.release(), E_LOCK_NOT_OWNED)
    await assert.rejects(second.extend(), E_LOCK_NOT_OWNED)
    const after = [factory, otherFactory].map((each) => each.createSemaphore(key, { limit: 2, ttl: LONG_TTL }))
    for (const permit of after) assert.equal(await permit.acquireImmediately(), true, 'free again after forceRelease')
    await Promise.all(after.map((permit) => permit.release()))
  })

  test('a permit restored by the other store is a permit of the same limit, and releases it', async () => {
    const { factory, otherFactory, key } = await setup()
    const permit = factory.createSemaphore(key, { limit: 1, ttl: LONG_TTL })
    assert.equal(await permit.acquire(), true)
    const restored = otherFactory.restoreLock(permit.serialize())
    assert.equal(restored.kind, 'permit')
    assert.equal(restored.limit, 1)
    assert.equal(restored.fencingToken, permit.fencingToken)
    assert.equal(await restored.isLocked(), true)
    await restored.extend()
    await restored.release()
    assert.equal(await restored.isLocked(), false)
    await assert.rejects(permit.release(), E_LOCK_NOT_OWNED)
  })

  test('run with autoExtend keeps a short permit through longer work', async () => {
    const { factory, otherFactory, key } = await setup()
    const permit = factory.createSemaphore(key, { limit: 1, ttl: 1_000 })
    const rival = otherFactory.createSemaphore(key, { limit: 1, ttl: LONG_TTL })
    const [ran, result] = await permit.run(
      async ({ signal, fencingToken }) => {
        await sleep(1_200)
        const [rivalRan] = await rival.runImmediately(() => {})
        assert.equal(rivalRan, false, 'the permit is still held past its first lease')
        await sleep(200)
        assert.equal(signal.aborted, false)
        return fencingToken
      },
      { autoExtend: true },
    )
    assert.equal(ran, true)
    assert.equal(result, permit.fencingToken)
    assert.equal(await rival.acquireImmediately(), true, 'released after run')
    await rival.release()
  })
}
