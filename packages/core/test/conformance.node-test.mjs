// The conformance suite under node:test, against the built package: proves the suite works outside vitest
// and that the published entry points (`@verrou/core`, `@verrou/core/test-suite`) resolve.
import { after, describe, test } from 'node:test'
import { MemoryStore } from '@verrou/core'
import { runLockStoreConformance } from '@verrou/core/test-suite'

const shared = new MemoryStore()

runLockStoreConformance({
  name: 'memory (node:test)',
  createStore: () => shared,
  capabilities: { releaseNotifications: true, close: false, waitQueue: true, sharedLocks: true },
  // node:test takes the timeout as an option before the body.
  runner: { describe, test: (name, body, timeoutMs) => test(name, { timeout: timeoutMs }, body), afterAll: after },
})
