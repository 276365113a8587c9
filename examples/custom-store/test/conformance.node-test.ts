// The same driver proven under node:test, for authors who do not use vitest.
import { after, describe, test } from 'node:test'
import { runLockStoreConformance } from '@verrou/core/test-suite'
import { KvLockStore, type LockRecord } from '../src/kv_lock_store.js'
import { VersionedKv } from '../src/versioned_kv.js'

const service = new VersionedKv<LockRecord>()

runLockStoreConformance({
  name: 'KvLockStore under node:test',
  createStore: () => new KvLockStore(service),
  capabilities: { releaseNotifications: false, close: false, waitQueue: true, sharedLocks: false },
  runner: { describe, test: (name, body, timeoutMs) => test(name, { timeout: timeoutMs }, body), afterAll: after },
})
