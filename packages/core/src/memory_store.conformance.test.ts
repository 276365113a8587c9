import { afterAll, describe, test } from 'vitest'
import { MemoryStore } from './memory_store.js'
import type { LockStore } from './store.js'
import { runLockStoreConformance } from './test_suite/index.js'

/** Stands for a backend that refuses connections: every call fails the way a network client does. */
function refusingStore(): LockStore {
  const refuse = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))
  return { acquire: refuse, release: refuse, extend: refuse, forceRelease: refuse, isLocked: refuse }
}

// One memory store stands for one backend: both "processes" of each test share it.
const shared = new MemoryStore()

runLockStoreConformance({
  name: 'memory',
  createStore: () => shared,
  createUnreachableStore: refusingStore,
  capabilities: { releaseNotifications: true, close: false, waitQueue: true, sharedLocks: true },
  runner: { describe, test, afterAll },
})
