import { LockFactory } from '@verrou/core'
import { LEASE_MS, type LockClient, type StoreId, type Subject } from '../subject.js'
import type { OpenStore } from './verrou.js'

/** Permits of every semaphore the bench measures, ours and redis-semaphore's alike. */
export const SEMAPHORE_LIMIT = 3

/**
 * Our semaphore on one store with the shipped defaults: each `lock` takes one of `SEMAPHORE_LIMIT` permits of
 * the key. Uncontended it is one permit acquired and released; under contention eight workers share three.
 */
export function verrouSemaphoreSubject(store: StoreId, open: OpenStore): Subject {
  return {
    id: `${store}/verrou-semaphore`,
    store,
    label: `verrou semaphore (limit ${SEMAPHORE_LIMIT})`,
    role: 'semaphore',
    cycles: true,
    contention: true,
    holders: SEMAPHORE_LIMIT,
    async connect(counters, options): Promise<LockClient> {
      const opened = await open(counters, options)
      const factory = new LockFactory(opened.store)
      return {
        async lock(key) {
          const permit = factory.createSemaphore(key, { limit: SEMAPHORE_LIMIT, ttl: LEASE_MS })
          if (!(await permit.acquire())) throw new Error(`verrou semaphore gave up on "${key}" without a retry limit`)
          return () => permit.release()
        },
        async close() {
          await opened.store.close?.()
          await opened.close()
        },
      }
    },
  }
}
