import { LEASE_MS, type Subject } from '../subject.js'
import { pollingClient } from './floor_polling.js'

/** The in-process floor: a Map of owners and lease ends, behind the same async calls a store has. */
export function memoryFloorSubject(): Subject {
  const leases = new Map<string, { owner: string; expiresAt: number }>()
  return {
    id: 'memory/floor',
    store: 'memory',
    label: 'raw floor (Map)',
    role: 'floor',
    cycles: true,
    contention: true,
    async connect(_counters, options) {
      return pollingClient(options, {
        async tryAcquire(key, owner) {
          const now = performance.now()
          const current = leases.get(key)
          if (current !== undefined && current.expiresAt > now) return false
          leases.set(key, { owner, expiresAt: now + LEASE_MS })
          return true
        },
        async release(key, owner) {
          const current = leases.get(key)
          if (current === undefined || current.owner !== owner || current.expiresAt <= performance.now()) return false
          leases.delete(key)
          return true
        },
        async close() {},
      })
    },
  }
}
