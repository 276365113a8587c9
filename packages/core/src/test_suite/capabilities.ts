import type { LockStore } from '../store.js'

/**
 * What a driver declares its store offers. Every switch is required: a driver opts out of a group by
 * naming it (`releaseNotifications: false`), never by leaving something out, and the suite fails loudly
 * when a store does not match what was declared.
 */
export interface StoreCapabilities {
  /**
   * The store implements `subscribeToReleases`: the "release notifications" group then holds it to the
   * announcement rules. `false`: the store must not have the method, and waiters are held to polling.
   */
  releaseNotifications: boolean
  /** The store implements `close()`: the "closing" group then checks a second `close()` is harmless too. */
  close: boolean
  /**
   * The store implements `leaveQueue`: it is a queueing store (FIFO waiters per key, no barging, place
   * leases; see `LockStore.acquire`), and the "wait queue" group holds it to those rules. `false`: the store
   * must not have the method; waiters then poll as before.
   */
  waitQueue: boolean
  /**
   * The store has `shared` (a `SharedLockStore`): semaphores and read-write locks, held to the "semaphores"
   * and "read-write locks" groups. `false`: the store must not have `shared`. A store with `shared` announces
   * shared releases (`shared.subscribeToReleases`) exactly when it announces mutex releases.
   */
  sharedLocks: boolean
}

/** The switch names the suite knows, with the store member each one stands for (a method, or `shared`). */
export const CAPABILITIES = {
  releaseNotifications: 'subscribeToReleases',
  close: 'close',
  waitQueue: 'leaveQueue',
  sharedLocks: 'shared',
} as const satisfies Record<keyof StoreCapabilities, keyof LockStore>

export type CapabilityName = keyof StoreCapabilities

/** Whether `store` offers what the switch `name` stands for: a method, or for `sharedLocks` an object. */
export function offers(store: LockStore, name: CapabilityName): boolean {
  const member: unknown = store[CAPABILITIES[name]]
  return name === 'sharedLocks' ? typeof member === 'object' && member !== null : typeof member === 'function'
}

/** How a switch's member is named in messages: `leaveQueue()`, or `shared`. */
export function memberName(name: CapabilityName): string {
  return name === 'sharedLocks' ? CAPABILITIES[name] : `${CAPABILITIES[name]}()`
}

/** Checks the declaration itself when the suite is registered: unknown or missing names throw at once. */
export function validateCapabilities(capabilities: unknown): StoreCapabilities {
  const known = Object.keys(CAPABILITIES)
  if (typeof capabilities !== 'object' || capabilities === null) {
    throw new TypeError(`runLockStoreConformance: \`capabilities\` is required, an object with ${known.join(', ')}`)
  }
  for (const name of Object.keys(capabilities)) {
    if (!known.includes(name)) {
      throw new TypeError(`runLockStoreConformance: unknown capability "${name}" (known: ${known.join(', ')})`)
    }
  }
  for (const name of known) {
    const value = (capabilities as Record<string, unknown>)[name]
    if (typeof value !== 'boolean') {
      throw new TypeError(`runLockStoreConformance: capabilities.${name} must be true or false, got ${String(value)}`)
    }
  }
  return capabilities as StoreCapabilities
}

/** Throws, naming the switch, when `store` offers a method its declaration says it lacks, or the reverse. */
export function assertCapabilitiesMatch(store: LockStore, capabilities: StoreCapabilities): void {
  for (const name of Object.keys(CAPABILITIES) as CapabilityName[]) {
    const offered = offers(store, name)
    if (offered !== capabilities[name]) {
      const member = memberName(name)
      throw new Error(
        offered
          ? `createStore returned a store with ${member}, but capabilities.${name} is false: declare it true so the suite tests it`
          : `capabilities.${name} is true, but createStore returned a store without ${member}`,
      )
    }
  }
  const shared = store.shared
  if (capabilities.sharedLocks && shared !== undefined) {
    const announces = typeof shared.subscribeToReleases === 'function'
    if (announces !== capabilities.releaseNotifications) {
      throw new Error(
        announces
          ? 'the store has shared.subscribeToReleases() but capabilities.releaseNotifications is false: shared locks announce releases exactly when mutexes do'
          : 'capabilities.releaseNotifications is true, but the store has no shared.subscribeToReleases(): shared locks announce releases exactly when mutexes do',
      )
    }
  }
}
