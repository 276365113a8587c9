import { describe, expect, test } from 'vitest'
import { LockFactory } from './lock_factory.js'
import { MemoryStore } from './memory_store.js'
import type { AcquireResult, LockStore, Unsubscribe } from './store.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

function deferred<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

/** Settles with `promise`'s value, or 'still pending' once `ms` have passed. */
const within = <T>(promise: Promise<T>, ms: number) => Promise.race([promise, sleep(ms).then(() => 'still pending' as const)])

/** The memory store without release notifications: waiters can only poll. */
function pollingStore(store = new MemoryStore()): LockStore & { attempts: () => number } {
  let attempts = 0
  return {
    acquire: (...args) => {
      attempts++
      return store.acquire(...args)
    },
    release: store.release.bind(store),
    extend: store.extend.bind(store),
    forceRelease: store.forceRelease.bind(store),
    isLocked: store.isLocked.bind(store),
    attempts: () => attempts,
  }
}

describe('the deadline and the signal bound all of acquire()', () => {
  test('a slow subscription does not hold acquire past retry.timeout', async () => {
    const store = new MemoryStore()
    const subscription = deferred<Unsubscribe>()
    store.subscribeToReleases = () => subscription.promise
    const factory = new LockFactory(store)
    await factory.createLock('k', '10s').acquire()
    const outcome = factory.createLock('k').acquire({ retry: { timeout: 100 } })
    expect(await within(outcome, 1_500)).toBe(false)
    subscription.resolve(() => {})
  })

  test('an abort during a slow subscription rejects at once', async () => {
    const store = new MemoryStore()
    store.subscribeToReleases = () => new Promise<Unsubscribe>(() => {})
    const factory = new LockFactory(store)
    await factory.createLock('k', '10s').acquire()
    const controller = new AbortController()
    const outcome = factory
      .createLock('k')
      .acquire({ signal: controller.signal })
      .catch((error: unknown) => error)
    await sleep(20)
    const reason = new Error('shutting down')
    controller.abort(reason)
    expect(await within(outcome, 1_000)).toBe(reason)
  })

  test('a retry in flight at the deadline is abandoned, and the grant it brings later is released', async () => {
    const memory = new MemoryStore()
    const store = pollingStore(memory)
    const gate = deferred<void>()
    const factory = new LockFactory(store)
    const holder = factory.createLock('k', '10s')
    await holder.acquire()
    const acquire = store.acquire
    store.acquire = async (...args) => {
      // The second attempt reaches the store only after the waiter gave up, and is granted there.
      if (store.attempts() >= 2) await gate.promise
      return acquire(...args)
    }
    const outcome = factory.createLock('k').acquire({ retry: { timeout: 100, delay: 20 } })
    expect(await within(outcome, 1_000)).toBe(false)
    await holder.release()
    gate.resolve()
    await sleep(20)
    expect(await memory.isLocked('k')).toBe(false)
  })

  test('timeout 0 still makes exactly one attempt, awaited', async () => {
    const store = pollingStore()
    const slow = store.acquire
    store.acquire = async (...args) => {
      await sleep(30)
      return slow(...args)
    }
    expect(await new LockFactory(store).createLock('k').acquire({ retry: { timeout: 0 } })).toBe(true)
  })
})

describe('waiting with long durations', () => {
  test('a 30-day retry delay polls once, not every millisecond', async () => {
    const store = pollingStore()
    const factory = new LockFactory(store)
    // A holder without expiry: no lease-end hint shortens the pause.
    await factory.createLock('k', null).acquire()
    const before = store.attempts()
    const controller = new AbortController()
    const outcome = factory.createLock('k').acquire({ retry: { delay: '30d' }, signal: controller.signal })
    await sleep(200)
    controller.abort(new Error('enough'))
    await expect(outcome).rejects.toThrow('enough')
    expect(store.attempts() - before).toBeLessThanOrEqual(2)
  })

  test('a store that keeps saying the lease ends now does not make the waiter spin', async () => {
    const store = pollingStore()
    const acquire = store.acquire
    store.acquire = async (...args): Promise<AcquireResult> => {
      const result = await acquire(...args)
      return result.acquired ? result : { acquired: false, expiresIn: 0 }
    }
    const factory = new LockFactory(store)
    await factory.createLock('k', '10s').acquire()
    const before = store.attempts()
    expect(await factory.createLock('k').acquire({ retry: { delay: 100, timeout: 500 } })).toBe(false)
    // One attempt per 100 ms delay plus one hinted retry after each: about 10, never hundreds.
    expect(store.attempts() - before).toBeLessThanOrEqual(14)
  })
})

describe('waking at the end of the holder lease', () => {
  test('a waiter woken a little before the lease really ends tries again at once, not after its whole retry delay', async () => {
    const store = pollingStore()
    const acquire = store.acquire
    // The hint says the lease ends 5 ms sooner than it does, as a timer firing early (or a clock a tick
    // behind) would make it: the hinted attempt still finds the lock held.
    store.acquire = async (...args): Promise<AcquireResult> => {
      const result = await acquire(...args)
      if (result.acquired || result.expiresIn === undefined) return result
      return { ...result, expiresIn: Math.max(0, result.expiresIn - 5) }
    }
    const factory = new LockFactory(store)
    await factory.createLock('k', 150).acquire()
    const started = performance.now()
    expect(await factory.createLock('k').acquire({ retry: { delay: '10s', timeout: '20s' } })).toBe(true)
    expect(performance.now() - started).toBeLessThan(1_000)
  })
})

describe('locks are not re-entrant: acquiring a lock this Lock holds answers false at once', () => {
  test.each([null, 200, '10s'])('ttl %j', async (ttl) => {
    const store = pollingStore()
    const lock = new LockFactory(store).createLock('k', ttl)
    expect(await lock.acquire()).toBe(true)
    const token = lock.fencingToken
    const attempts = store.attempts()
    expect(await within(lock.acquire(), 1_000)).toBe(false)
    expect(await lock.acquireImmediately()).toBe(false)
    expect(
      await within(
        lock.run(() => 'ran'),
        1_000,
      ),
    ).toEqual([false, null])
    expect(store.attempts()).toBe(attempts)
    expect(lock.fencingToken).toBe(token)
    await lock.release()
    expect(await lock.acquire()).toBe(true)
    await lock.release()
  })

  test('two concurrent acquires of one Lock: one gets it, the other answers false without waiting out the lease', async () => {
    const lock = new LockFactory(new MemoryStore()).createLock('k', null)
    const results = await within(Promise.all([lock.acquire(), lock.acquire()]), 2_000)
    expect(results).not.toBe('still pending')
    expect([...(results as boolean[])].sort()).toEqual([false, true])
    await lock.release()
  })
})

test('an unsubscribe that throws when a late subscription ends is not an unhandled rejection', async () => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => unhandled.push(reason)
  process.on('unhandledRejection', onUnhandled)
  try {
    const store = new MemoryStore()
    const subscription = deferred<Unsubscribe>()
    store.subscribeToReleases = () => subscription.promise
    const factory = new LockFactory(store)
    await factory.createLock('k', '10s').acquire()
    await within(factory.createLock('k').acquire({ retry: { timeout: 100 } }), 2_500)
    subscription.resolve(() => {
      throw new Error('unsubscribe failed')
    })
    await sleep(50)
    expect(unhandled).toEqual([])
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
})

/** The memory store with a record of the `wait` each acquire carried, optionally without notifications. */
function recordingStore({ notifications = true } = {}) {
  const store = new MemoryStore()
  const calls: { owner: string; args: number }[] = []
  const recorded: LockStore = {
    acquire: (...args) => {
      calls.push({ owner: args[1], args: args.length })
      return store.acquire(...args)
    },
    release: store.release.bind(store),
    extend: store.extend.bind(store),
    forceRelease: store.forceRelease.bind(store),
    isLocked: store.isLocked.bind(store),
    leaveQueue: store.leaveQueue.bind(store),
  }
  if (notifications) recorded.subscribeToReleases = store.subscribeToReleases.bind(store)
  return { store: recorded, calls }
}

describe('waiting in a queueing store', () => {
  test('a store without leaveQueue never receives a fourth argument', async () => {
    const { store, calls } = recordingStore()
    delete store.leaveQueue
    const factory = new LockFactory(store)
    await factory.createLock('k', '10s').acquire()
    expect(await factory.createLock('k').acquire({ retry: { timeout: 100, delay: 10 } })).toBe(false)
    expect(calls.length).toBeGreaterThan(2)
    expect(calls.every((call) => call.args === 3)).toBe(true)
  })

  test('only a caller that will wait passes wait: single attempts never join the queue', async () => {
    const { store, calls } = recordingStore()
    const factory = new LockFactory(store)
    await factory.createLock('k', '10s').acquire()
    await factory.createLock('k').acquireImmediately()
    await factory.createLock('k').acquire({ retry: { timeout: 0 } })
    await factory.createLock('k').acquire({ retry: { attempts: 1 } })
    expect(calls.map((call) => call.args)).toEqual([4, 3, 3, 3])
  })

  test('an aborted waiter leaves the queue at once, so the next one is not held up', async () => {
    const store = new MemoryStore()
    const factory = new LockFactory(store)
    const holder = factory.createLock('k', '10s')
    await holder.acquire()
    const controller = new AbortController()
    const aborted = factory.createLock('k').acquire({ signal: controller.signal })
    await sleep(20)
    const next = factory.createLock('k').acquire()
    await sleep(20)
    controller.abort(new Error('stop'))
    await expect(aborted).rejects.toThrow('stop')
    const releasedAt = performance.now()
    await holder.release()
    expect(await next).toBe(true)
    expect(performance.now() - releasedAt).toBeLessThan(500)
  })

  test('without notifications each waiter polls by its place: the head every 20 ms, the next every 40 ms, and so on', async () => {
    const { store, calls } = recordingStore({ notifications: false })
    const factory = new LockFactory(store)
    const holder = factory.createLock('k', '10s')
    await holder.acquire()
    const owners = ['head', 'second', 'third', 'fourth']
    const waiting = []
    for (const owner of owners) {
      waiting.push(factory.createLock('k', '10s', { owner }).acquire({ retry: { delay: '10s', timeout: '5s' } }))
      await sleep(5)
    }
    await sleep(600)
    const count = (owner: string) => calls.filter((call) => call.owner === owner).length
    const counts = owners.map(count)
    // Roughly 600/20, 600/40, 600/60, 600/80 attempts: the further back, the fewer, and none at its 10 s delay.
    expect(counts[0]).toBeGreaterThan(15)
    for (let place = 1; place < owners.length; place++) {
      expect(counts[place]!, owners[place]).toBeLessThanOrEqual(counts[place - 1]!)
      expect(counts[place]!, owners[place]).toBeGreaterThan(2)
      expect(counts[place]!, owners[place]).toBeLessThanOrEqual(Math.ceil(600 / (20 * (place + 1))) + 2)
    }
    await holder.release()
    for (const [index, done] of waiting.entries()) {
      expect(await done).toBe(true)
      await factory.createLock('k', '10s', { owner: owners[index]! }).release()
    }
  })

  test('while its subscription is still being set up, the head polls: a release it cannot hear yet is taken within a poll', async () => {
    const { store, calls } = recordingStore()
    const subscribe = store.subscribeToReleases!
    // A listener connection that takes a second to open (a TLS handshake to a remote server, a busy machine).
    store.subscribeToReleases = async (key, listener) => {
      await sleep(1_000)
      return subscribe(key, listener)
    }
    const factory = new LockFactory(store)
    const holder = factory.createLock('k', '10s')
    await holder.acquire()
    const head = factory.createLock('k', '10s', { owner: 'head' })
    const heading = head.acquire({ retry: { delay: '10s', timeout: '5s' } })
    await sleep(100)
    expect(calls.filter((call) => call.owner === 'head').length).toBeGreaterThan(3)
    const releasedAt = performance.now()
    await holder.release()
    expect(await within(heading, 500)).toBe(true)
    expect(performance.now() - releasedAt).toBeLessThan(200)
    await head.release()
  })

  test('when subscribing fails, the head polls briefly instead of waiting for notifications that never come', async () => {
    const { store, calls } = recordingStore()
    store.subscribeToReleases = () => Promise.reject(new Error('pub/sub refused'))
    const factory = new LockFactory(store, { logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {} } })
    const holder = factory.createLock('k', '10s')
    await holder.acquire()
    const head = factory.createLock('k', '10s', { owner: 'head' })
    const heading = head.acquire({ retry: { delay: '10s', timeout: '5s' } })
    await sleep(500)
    expect(calls.filter((call) => call.owner === 'head').length).toBeGreaterThan(10)
    await holder.release()
    expect(await heading).toBe(true)
    await head.release()
  })
})
