import { randomUUID } from 'node:crypto'
import { LockFactory, type LockStore } from '@verrou/core'
import { type ConnectOptions, type Counters, LEASE_MS, type LockClient, type StoreId, type Subject } from '../subject.js'
import { verrouSemaphoreSubject } from './verrou_semaphore.js'

/** A store of ours on connections of its own, and how to close them. */
export interface OpenedStore {
  store: LockStore
  /** Closes the connections the subject opened (the store's own `close` is called first). */
  close(): Promise<void>
}

export type OpenStore = (counters: Counters, options?: ConnectOptions) => Promise<OpenedStore>

/** The retry delay users get without configuring anything (`RetryOptions.delay`). */
export const DEFAULT_RETRY_DELAY_MS = 250
/** A short delay a user tuning for latency would pick: reported next to the default, never instead of it. */
export const SHORT_RETRY_DELAY_MS = 10

/**
 * Our lock on one store, twice: with the default retry delay (the one in the cycle table as well: an
 * uncontended acquire never waits) and with a short one, under contention only. Plus the store called
 * without Lock, in the cycle test only: the difference between the two is what Lock itself costs. And a
 * semaphore permit, in both, beside the mutex.
 */
export function verrouSubjects(store: StoreId, open: OpenStore): Subject[] {
  return [
    verrouSubject(store, open, DEFAULT_RETRY_DELAY_MS, { label: 'verrou', cycles: true }),
    verrouSubject(store, open, SHORT_RETRY_DELAY_MS, { label: `verrou (retry ${SHORT_RETRY_DELAY_MS} ms)`, cycles: false }),
    storeAloneSubject(store, open),
    verrouSemaphoreSubject(store, open),
  ]
}

function storeAloneSubject(store: StoreId, open: OpenStore): Subject {
  return {
    id: `${store}/verrou-store-alone`,
    store,
    label: 'its store alone, no Lock',
    role: 'diagnostic',
    cycles: true,
    contention: false,
    async connect(counters, options): Promise<LockClient> {
      const opened = await open(counters, options)
      return {
        async lock(key) {
          const owner = randomUUID()
          const result = await opened.store.acquire(key, owner, LEASE_MS)
          if (!result.acquired) throw new Error(`store alone: "${key}" was held, yet only this client uses it`)
          return async () => {
            if (!(await opened.store.release(key, owner))) throw new Error(`store alone: "${key}" was not released`)
          }
        },
        async close() {
          await opened.store.close?.()
          await opened.close()
        },
      }
    },
  }
}

function verrouSubject(
  store: StoreId,
  open: OpenStore,
  retryDelay: number,
  { label, cycles }: { label: string; cycles: boolean },
): Subject {
  return {
    id: `${store}/verrou-${retryDelay}ms`,
    store,
    label,
    role: 'ours',
    cycles,
    contention: true,
    async connect(counters, options): Promise<LockClient> {
      const opened = await open(counters, options)
      // Timed only in contention runs: the uncontended cycles call the store itself.
      const attempts = options?.timeAttempts ? timedAttempts(opened.store) : undefined
      // Only the delay is set: everything else (operation timeout, wake-on-release) stays as shipped.
      const factory = new LockFactory(attempts?.store ?? opened.store, { retry: { delay: retryDelay } })
      return {
        ...(attempts === undefined ? {} : { lastAttemptSentAt: attempts.lastSentAt }),
        async lock(key) {
          const lock = factory.createLock(key, LEASE_MS)
          // No timeout and no attempt limit: `false` would be a bug, not a measurement.
          if (!(await lock.acquire())) throw new Error(`verrou gave up on "${key}" without a retry limit`)
          return () => lock.release()
        },
        async close() {
          await opened.store.close?.()
          await opened.close()
        },
      }
    },
  }
}

/**
 * The same store, with the send time of its latest `acquire` kept (for the hand-off split). A proxy: every
 * other member, optional ones included, is the store's own (methods bound to it, so private fields work).
 */
function timedAttempts(store: LockStore): { store: LockStore; lastSentAt: () => number | undefined } {
  let sentAt: number | undefined
  const acquire: LockStore['acquire'] = (key, owner, ttl, wait) => {
    sentAt = performance.now()
    return store.acquire(key, owner, ttl, wait)
  }
  const timed = new Proxy(store, {
    get(target, property) {
      if (property === 'acquire') return acquire
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { store: timed, lastSentAt: () => sentAt }
}
