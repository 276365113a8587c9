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
}

/** The switch names the suite knows, with the store method each one stands for. */
export const CAPABILITIES = {
  releaseNotifications: 'subscribeToReleases',
  close: 'close',
  waitQueue: 'leaveQueue',
} as const satisfies Record<keyof StoreCapabilities, keyof LockStore>

export type CapabilityName = keyof StoreCapabilities

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
  for (const [name, method] of Object.entries(CAPABILITIES) as [CapabilityName, keyof LockStore][]) {
    const offered = typeof store[method] === 'function'
    if (offered !== capabilities[name]) {
      throw new Error(
        offered
          ? `createStore returned a store with ${method}(), but capabilities.${name} is false: declare it true so the suite tests it`
          : `capabilities.${name} is true, but createStore returned a store without ${method}()`,
      )
    }
  }
}
