// The conformance suite under mocha, through `import`. Mocha takes a test's timeout on the test it returns,
// and calls its hook `after`.
import { MemoryStore } from '@verrou/core'
import { runLockStoreConformance } from '@verrou/core/test-suite'
import { after, describe, it } from 'mocha'

const shared = new MemoryStore()

runLockStoreConformance({
  name: 'memory (mocha)',
  createStore: () => shared,
  capabilities: { releaseNotifications: true, close: false, waitQueue: true, sharedLocks: true },
  runner: { describe, test: (name, body, timeoutMs) => it(name, body).timeout(timeoutMs), afterAll: after },
})
