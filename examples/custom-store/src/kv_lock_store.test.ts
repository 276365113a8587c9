import { runLockStoreConformance } from '@verrou/core/test-suite'
import { afterAll, describe, test } from 'vitest'
import { KvLockStore, type LockRecord } from './kv_lock_store.js'
import { VersionedKv } from './versioned_kv.js'

// Both "processes" of each test talk to the same service.
const service = new VersionedKv<LockRecord>()

runLockStoreConformance({
  name: 'KvLockStore (example third-party driver)',
  createStore: () => new KvLockStore(service),
  createUnreachableStore: () => {
    const down = new VersionedKv<LockRecord>()
    down.down = true
    return new KvLockStore(down)
  },
  capabilities: { releaseNotifications: false, close: false, waitQueue: true, sharedLocks: false },
  runner: { describe, test, afterAll },
})
