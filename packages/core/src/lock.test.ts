import { describe, expect, test, vi } from 'vitest'
import { QUEUE_PLACE_LEASE_MS } from './acquire.js'
import { E_LOCK_LOST, E_LOCK_NOT_OWNED, E_LOCK_STORAGE_ERROR } from './errors.js'
import { LockFactory } from './lock_factory.js'
import type { Logger } from './logger.js'
import { MemoryStore } from './memory_store.js'
import type { AcquireResult, LockStore, WaitOptions } from './store.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * A memory store in front of which sits what a networked store keeps per process: one "inbox" that hears
 * every announcement of `key` from the start, hands it to the key's listeners, or keeps it (the last one)
 * while the key has none and replays it to the next listener. `reachesBack`: its subscriptions say so.
 */
async function inboxStore(key: string, reachesBack: boolean) {
  const memory = new MemoryStore()
  const listeners = new Set<(next?: string) => void>()
  let unheard: { next: string | undefined } | undefined
  const openedAt = performance.now()
  await memory.subscribeToReleases(key, (next) => {
    if (listeners.size === 0) unheard = { next }
    for (const listener of listeners) listener(next)
  })
  const attemptsBy = new Map<string, number>()
  const store: LockStore = {
    acquire: (...args) => {
      attemptsBy.set(args[1], (attemptsBy.get(args[1]) ?? 0) + 1)
      return memory.acquire(...args)
    },
    release: memory.release.bind(memory),
    extend: memory.extend.bind(memory),
    forceRelease: memory.forceRelease.bind(memory),
    isLocked: memory.isLocked.bind(memory),
    leaveQueue: memory.leaveQueue.bind(memory),
    async subscribeToReleases(subscribed, listener) {
      if (subscribed !== key) throw new Error(`no inbox for ${subscribed}`)
      listeners.add(listener)
      const replay = unheard
      unheard = undefined
      if (replay !== undefined) listener(replay.next)
      const unsubscribe = () => void listeners.delete(listener)
      return reachesBack ? Object.assign(unsubscribe, { heardSince: openedAt }) : unsubscribe
    },
  }
  return { store, attemptsBy }
}

/** A memory store whose calls can be made to fail or hang on demand. */
class FaultyStore extends MemoryStore {
  fault: 'none' | 'throw' | 'hang' = 'none'
  hangMs = 0
  acquireCalls = 0

  async #gate(): Promise<void> {
    if (this.fault === 'throw') throw new Error('connection reset by peer')
    if (this.fault === 'hang') await sleep(this.hangMs)
  }
  override async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    this.acquireCalls += 1
    await this.#gate()
    return super.acquire(key, owner, ttl, wait)
  }
  override async release(key: string, owner: string) {
    await this.#gate()
    return super.release(key, owner)
  }
  override async extend(key: string, owner: string, ttl: number | null) {
    await this.#gate()
    return super.extend(key, owner, ttl)
  }
}

describe('backend failures', () => {
  test('a store error becomes E_LOCK_STORAGE_ERROR with the original as cause, not "not acquired"', async () => {
    const store = new FaultyStore()
    store.fault = 'throw'
    const lock = new LockFactory(store).createLock('k')
    const error = await lock.acquire().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(E_LOCK_STORAGE_ERROR)
    expect((error as E_LOCK_STORAGE_ERROR).code).toBe('E_LOCK_STORAGE_ERROR')
    expect((error as E_LOCK_STORAGE_ERROR).operation).toBe('acquire')
    expect(((error as Error).cause as Error).message).toBe('connection reset by peer')
    await expect(lock.release()).rejects.toBeInstanceOf(E_LOCK_STORAGE_ERROR)
    await expect(lock.extend()).rejects.toBeInstanceOf(E_LOCK_STORAGE_ERROR)
  })

  test('a store that hangs fails after operationTimeout, and a lock it grants too late is given back', async () => {
    const store = new FaultyStore()
    store.fault = 'hang'
    store.hangMs = 300
    const lock = new LockFactory(store, { operationTimeout: 50 }).createLock('k', '10s')
    const started = performance.now()
    await expect(lock.acquireImmediately()).rejects.toBeInstanceOf(E_LOCK_STORAGE_ERROR)
    expect(performance.now() - started).toBeLessThan(250)
    store.fault = 'none'
    await sleep(400)
    expect(await store.isLocked('k')).toBe(false)
  })

  test('a store returning a bogus fencing token is a storage error', async () => {
    const store = new MemoryStore()
    store.acquire = async () => ({ acquired: true, fencingToken: Number.NaN })
    await expect(new LockFactory(store).createLock('k').acquire()).rejects.toBeInstanceOf(E_LOCK_STORAGE_ERROR)
  })
})

describe('holding a lock', () => {
  test('autoExtend keeps a 200 ms lock alive through 1 s of work', async () => {
    const store = new MemoryStore()
    const factory = new LockFactory(store)
    const lock = factory.createLock('job', 200)
    const [ran, aborted] = await lock.run(
      async ({ signal }) => {
        for (let i = 0; i < 10; i++) {
          await sleep(100)
          expect(await factory.createLock('job').acquireImmediately()).toBe(false)
        }
        return signal.aborted
      },
      { autoExtend: true },
    )
    expect(ran).toBe(true)
    expect(aborted).toBe(false)
    expect(await store.isLocked('job')).toBe(false)
  })

  test('a refused extension aborts the signal with E_LOCK_LOST, and run reports the lost lock', async () => {
    const factory = new LockFactory(new MemoryStore())
    const lock = factory.createLock('job', 200)
    let reason: unknown
    const outcome = lock.run(
      async ({ signal }) => {
        await factory.createLock('job').forceRelease()
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
        reason = signal.reason
      },
      { autoExtend: true },
    )
    const error = await outcome.catch((caught: unknown) => caught)
    expect(error).toBe(reason)
    expect(reason).toBeInstanceOf(E_LOCK_LOST)
    expect((reason as E_LOCK_LOST).cause).toBeInstanceOf(E_LOCK_NOT_OWNED)
  })

  test('storage errors while extending are retried until one succeeds', async () => {
    const store = new FaultyStore()
    const lock = new LockFactory(store).createLock('job', 300)
    const [, aborted] = await lock.run(
      async ({ signal }) => {
        store.fault = 'throw'
        await sleep(180)
        store.fault = 'none'
        await sleep(400)
        return signal.aborted
      },
      { autoExtend: true },
    )
    expect(aborted).toBe(false)
  })

  test('when extensions keep failing, the signal aborts as the lease runs out', async () => {
    const store = new FaultyStore()
    const lock = new LockFactory(store).createLock('job', 200)
    await lock.acquire()
    store.fault = 'throw'
    const keeper = lock.keepAlive()
    const started = performance.now()
    await new Promise<void>((resolve) => keeper.signal.addEventListener('abort', () => resolve(), { once: true }))
    expect(performance.now() - started).toBeLessThan(400)
    expect(keeper.signal.reason).toBeInstanceOf(E_LOCK_LOST)
    keeper.stop()
  })

  test('without autoExtend the signal aborts when the local lease estimate runs out', async () => {
    const lock = new LockFactory(new MemoryStore()).createLock('job', 100)
    const outcome = lock.run(async ({ signal, fencingToken }) => {
      expect(fencingToken).toBeGreaterThan(0)
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
      // The local estimate is conservative (counted from before the acquire was sent), so the store's lease
      // may outlive it by a moment; the release below must come after both.
      await sleep(50)
      return 'stopped'
    })
    await expect(outcome).rejects.toBeInstanceOf(E_LOCK_LOST)
  })

  test('await using releases the lock at the end of the scope', async () => {
    const store = new MemoryStore()
    const factory = new LockFactory(store)
    {
      await using lock = factory.createLock('scoped')
      expect(await lock.acquire()).toBe(true)
      expect(await store.isLocked('scoped')).toBe(true)
    }
    expect(await store.isLocked('scoped')).toBe(false)
    {
      await using unused = factory.createLock('scoped')
      expect(unused.isExpired()).toBe(true)
    }
  })
})

describe('defaults', () => {
  test('retry defaults set on the factory apply, and acquire options override them', async () => {
    const store = new FaultyStore()
    const factory = new LockFactory(store, { retry: { attempts: 3, delay: 1 } })
    await factory.createLock('k').acquire()
    store.acquireCalls = 0
    expect(await factory.createLock('k').acquire()).toBe(false)
    expect(store.acquireCalls).toBeLessThanOrEqual(3)
    store.acquireCalls = 0
    expect(await factory.createLock('k').acquire({ retry: { attempts: 1 } })).toBe(false)
    expect(store.acquireCalls).toBe(1)
  })

  test('the default ttl is 30 s and the default owner a random UUID', () => {
    const factory = new LockFactory(new MemoryStore())
    const a = factory.createLock('k')
    const b = factory.createLock('k')
    expect(a.ttl).toBe(30_000)
    expect(a.getOwner()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(a.getOwner()).not.toBe(b.getOwner())
    expect(new LockFactory(new MemoryStore(), { defaultTtl: '5m' }).createLock('k').ttl).toBe(300_000)
  })

  test('the logger hears about acquisitions and releases', async () => {
    const logger: Logger = { trace: vi.fn(), debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
    const lock = new LockFactory(new MemoryStore(), { logger }).createLock('logged')
    await lock.acquire()
    await lock.release()
    expect(logger.debug).toHaveBeenCalledWith(expect.objectContaining({ key: 'logged' }), 'verrou: lock acquired')
    expect(logger.debug).toHaveBeenCalledWith({ key: 'logged' }, 'verrou: lock released')
  })
})

describe('waiting', () => {
  test('one release wakes one in-process waiter, not all of them', async () => {
    const store = new FaultyStore()
    const factory = new LockFactory(store)
    const holder = factory.createLock('busy', '10s')
    await holder.acquire()
    const order: number[] = []
    const waiters = Array.from({ length: 10 }, (_, i) =>
      factory.createLock('busy', '10s').run(
        async () => {
          order.push(i)
          await sleep(1)
        },
        { retry: { delay: '10s' } },
      ),
    )
    await sleep(50)
    store.acquireCalls = 0
    await holder.release()
    await Promise.all(waiters)
    // Ten handoffs, one attempt each: no herd of failed round trips.
    expect(store.acquireCalls).toBe(10)
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  })

  test('a waiter wakes when the holder lease is due to end', async () => {
    const store = new MemoryStore()
    // Hide the release notifications so only the expiresIn hint can wake the waiter early.
    const quiet: LockStore = {
      acquire: store.acquire.bind(store),
      release: store.release.bind(store),
      extend: store.extend.bind(store),
      forceRelease: store.forceRelease.bind(store),
      isLocked: store.isLocked.bind(store),
    }
    const factory = new LockFactory(quiet)
    await factory.createLock('k', 150).acquire()
    const started = performance.now()
    expect(await factory.createLock('k').acquire({ retry: { delay: '10s' } })).toBe(true)
    expect(performance.now() - started).toBeLessThan(1000)
  })
})

describe('release subscriptions', () => {
  test('a store whose subscription hangs does not stall acquire: the waiter polls instead', async () => {
    const store = new MemoryStore()
    store.subscribeToReleases = () => new Promise(() => {})
    const factory = new LockFactory(store)
    const holder = factory.createLock('k', '10s')
    await holder.acquire()
    setTimeout(() => void holder.release(), 100)
    const started = performance.now()
    expect(await factory.createLock('k').acquire({ retry: { delay: 50, timeout: '10s' } })).toBe(true)
    expect(performance.now() - started).toBeLessThan(3_000)
  })

  test('a process that waits on a key again within the linger reuses its subscription and skips the extra attempt', async () => {
    const store = new MemoryStore()
    let subscriptions = 0
    const subscribe = store.subscribeToReleases.bind(store)
    store.subscribeToReleases = (key, listener) => {
      subscriptions++
      return subscribe(key, listener)
    }
    const attemptsBy = new Map<string, number>()
    const acquire = store.acquire.bind(store)
    store.acquire = (key, owner, ttl, wait) => {
      attemptsBy.set(owner, (attemptsBy.get(owner) ?? 0) + 1)
      return acquire(key, owner, ttl, wait)
    }
    const factory = new LockFactory(store)
    for (let round = 0; round < 3; round++) {
      const holder = factory.createLock('k', '10s')
      await holder.acquire()
      const waiter = factory.createLock('k', '10s')
      const waiting = waiter.acquire({ retry: { timeout: '10s' } })
      await new Promise((resolve) => setTimeout(resolve, 50))
      await holder.release()
      expect(await waiting).toBe(true)
      await waiter.release()
      // The first round subscribes and tries once more once subscribed; later rounds find it active.
      expect(attemptsBy.get(waiter.getOwner())).toBe(round === 0 ? 3 : 2)
    }
    expect(subscriptions).toBe(1)
  })

  test('a release announced between the attempt of a waiter and its joining the in-process queue still wakes it', async () => {
    const store = new MemoryStore()
    const factory = new LockFactory(store)
    const holder = factory.createLock('k', '10s')
    await holder.acquire()
    // Keep the key's subscription active (lingering) so that the waiter skips its extra attempt.
    const early = factory.createLock('k', '10s')
    expect(await early.acquire({ retry: { timeout: 30 } })).toBe(false)
    const acquire = store.acquire.bind(store)
    store.acquire = async (key, owner, ttl, wait) => {
      const reply = await acquire(key, owner, ttl, wait)
      // The holder releases after the store answered the waiter, before the waiter has joined.
      if (!reply.acquired && owner !== holder.getOwner() && holder.isExpired() === false) await holder.release()
      return reply
    }
    const started = performance.now()
    expect(await factory.createLock('k', '10s').acquire({ retry: { timeout: '10s' } })).toBe(true)
    // Not the third of the place lease that the next renewal would have taken.
    expect(performance.now() - started).toBeLessThan(QUEUE_PLACE_LEASE_MS / 3 - 200)
  })

  test('a subscription that reaches back before the attempt (heardSince) spares the extra attempt on a key waited on for the first time', async () => {
    for (const reachesBack of [true, false]) {
      const { store, attemptsBy } = await inboxStore('k', reachesBack)
      const factory = new LockFactory(store)
      const holder = factory.createLock('k', '10s')
      await holder.acquire()
      const waiter = factory.createLock('k', '10s')
      const waiting = waiter.acquire({ retry: { timeout: '10s' } })
      await sleep(50)
      await holder.release()
      expect(await waiting).toBe(true)
      // Refused, then woken by the release; a subscription that cannot vouch for the time before it was
      // active costs one more attempt, sent as soon as it is.
      expect({ reachesBack, attempts: attemptsBy.get(waiter.getOwner()) }).toEqual({ reachesBack, attempts: reachesBack ? 2 : 3 })
      await waiter.release()
    }
  })

  test('a release the store heard before the waiter subscribed is replayed to it, and wakes it at once', async () => {
    const { store, attemptsBy } = await inboxStore('k', true)
    const factory = new LockFactory(store)
    const holder = factory.createLock('k', '10s')
    await holder.acquire()
    const acquire = store.acquire.bind(store)
    store.acquire = async (key, owner, ttl, wait) => {
      const reply = await acquire(key, owner, ttl, wait)
      // The holder releases after the store answered the waiter, before the waiter has subscribed: the
      // store hears the announcement with no listener for the key yet.
      if (!reply.acquired && owner !== holder.getOwner() && holder.isExpired() === false) await holder.release()
      return reply
    }
    const waiter = factory.createLock('k', '10s')
    const started = performance.now()
    expect(await waiter.acquire({ retry: { timeout: '10s' } })).toBe(true)
    // Not the third of the place lease that the next renewal would have taken.
    expect(performance.now() - started).toBeLessThan(QUEUE_PLACE_LEASE_MS / 3 - 200)
    expect(attemptsBy.get(waiter.getOwner())).toBe(2)
  })

  test('a hanging subscription never outlasts the place of a waiter in the queue: the first waiter stays first', async () => {
    const store = new MemoryStore()
    store.subscribeToReleases = () => new Promise(() => {})
    const factory = new LockFactory(store)
    const holder = factory.createLock('k', '10s')
    await holder.acquire()
    const order: string[] = []
    const first = factory.createLock('k', '10s')
    const firstDone = first.acquire({ retry: { timeout: '10s' } }).then(async () => {
      order.push('first')
      await first.release()
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const second = factory.createLock('k', '10s')
    const secondDone = second.acquire({ retry: { timeout: '10s' } }).then(async () => {
      order.push('second')
      await second.release()
    })
    // Past the place lease: a waiter stuck waiting for its subscription that long would have lost its place.
    await new Promise((resolve) => setTimeout(resolve, QUEUE_PLACE_LEASE_MS + 500))
    await holder.release()
    await Promise.all([firstDone, secondDone])
    expect(order).toEqual(['first', 'second'])
  })
})

describe('fairness', () => {
  test('without notifications, the waiter next in line polls by its place, not at its retry delay', async () => {
    const store = new MemoryStore()
    // A queueing store that cannot announce: waiters learn their place only from their own attempts.
    Object.defineProperty(store, 'subscribeToReleases', { value: undefined })
    const factory = new LockFactory(store, { retry: { delay: 1_000 } })
    const holder = factory.createLock('k', '10s')
    await holder.acquire()
    const first = factory.createLock('k', '10s')
    const firstDone = first.acquire()
    await new Promise((resolve) => setTimeout(resolve, 30))
    const second = factory.createLock('k', '10s')
    const secondDone = second.acquire()
    await new Promise((resolve) => setTimeout(resolve, 100))
    await holder.release()
    expect(await firstDone).toBe(true)
    await first.release()
    const releasedAt = performance.now()
    expect(await secondDone).toBe(true)
    // Polling at its renewal (a third of the place lease) it would have left the lock idle about 550 ms.
    expect(performance.now() - releasedAt).toBeLessThan(300)
    await second.release()
  })

  test('a worker that releases and acquires again in a loop does not starve the waiters it woke', async () => {
    const factory = new LockFactory(new MemoryStore())
    const counts = new Map<number, number>()
    let retakes = 0
    let last = -1
    const stopAt = performance.now() + 300
    const worker = async (id: number) => {
      while (performance.now() < stopAt) {
        // Acquire, hold, release, and straight back in line: the loop most likely to barge.
        const lock = factory.createLock('contended', '10s')
        await lock.acquire({ retry: { delay: 250 } })
        if (last === id) retakes++
        last = id
        counts.set(id, (counts.get(id) ?? 0) + 1)
        await sleep(2)
        await lock.release()
      }
    }
    await Promise.all(Array.from({ length: 6 }, (_, id) => worker(id)))
    const total = [...counts.values()].reduce((a, b) => a + b, 0)
    expect(counts.size).toBe(6)
    expect(Math.min(...counts.values())).toBeGreaterThan(total / 6 / 2)
    expect(retakes).toBe(0)
  })
})
