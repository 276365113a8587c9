import { LockFactory } from 'verrou-v0'
import { type ConnectOptions, type Counters, LEASE_MS, type LockClient, type StoreId, type Subject } from '../subject.js'

/** What `LockFactory` of @verrou/core 0.5.2 takes: a store instance (its drivers' `factory()` result). */
export type V0Store = ConstructorParameters<typeof LockFactory>[0]

export interface OpenedV0Store {
  store: V0Store
  close(): Promise<void>
}

/**
 * The original Verrou (`@verrou/core` 0.5.2 from npm, under the `verrou-v0` alias) with its defaults:
 * retry every 250 ms, for ever.
 */
export function verrouV0Subject(
  store: StoreId,
  open: (counters: Counters, options?: ConnectOptions) => Promise<OpenedV0Store>,
  note = '',
): Subject {
  return {
    id: `${store}/verrou-v0`,
    store,
    label: `@verrou/core 0.5.2${note}`,
    role: 'peer',
    cycles: true,
    contention: true,
    async connect(counters, options): Promise<LockClient> {
      const opened = await open(counters, options)
      const factory = new LockFactory(opened.store)
      return {
        async lock(key) {
          const lock = factory.createLock(key, LEASE_MS)
          if (!(await lock.acquire())) throw new Error(`@verrou/core 0.5.2 gave up on "${key}" without a retry limit`)
          return () => lock.release()
        },
        close: () => opened.close(),
      }
    },
  }
}
