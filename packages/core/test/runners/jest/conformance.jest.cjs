// The conformance suite under jest, through `require`: jest's describe/test/afterAll fit the suite's runner
// interface as they are (test takes its timeout as the third argument).
const { MemoryStore } = require('@verrou/core')
const { runLockStoreConformance } = require('@verrou/core/test-suite')

const shared = new MemoryStore()

runLockStoreConformance({
  name: 'memory (jest)',
  createStore: () => shared,
  capabilities: { releaseNotifications: true, close: false, waitQueue: true, sharedLocks: true },
  runner: { describe, test, afterAll },
})
