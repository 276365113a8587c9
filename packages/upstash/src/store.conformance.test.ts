import { runLockStoreConformance } from '@verrou/core/test-suite'
import type { UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import { afterAll, beforeAll, describe, test } from 'vitest'
import { client, closedPort, startRestServer } from '../test/setup.js'
import { UpstashStore } from './store.js'

let server: UpstashRestServer

beforeAll(async () => {
  server = await startRestServer()
})

afterAll(async () => {
  await server?.close()
})

// Release notifications over event streams, with auto-pipelining off and on; and without them, where
// waiters poll.
for (const { enableAutoPipelining, releaseNotifications } of [
  { enableAutoPipelining: false, releaseNotifications: true },
  { enableAutoPipelining: true, releaseNotifications: true },
  { enableAutoPipelining: false, releaseNotifications: false },
]) {
  runLockStoreConformance({
    name: `UpstashStore through the REST server, auto-pipelining ${enableAutoPipelining ? 'on' : 'off'}, release notifications ${releaseNotifications ? 'on' : 'off'}`,
    runner: { describe, test, afterAll },
    capabilities: { releaseNotifications, close: true, waitQueue: true, sharedLocks: true },
    // A client per store, as two serverless invocations would have. The least grace allowed (1 s), so the
    // suite's idle-key fencing test outlives the counter and tokens must go on from the server clock.
    createStore: () =>
      new UpstashStore({
        connection: client(server, { enableAutoPipelining }),
        prefix: 'verrou-test:',
        fencingCounterGrace: 1000,
        releaseNotifications,
      }),
    createUnreachableStore: async () =>
      new UpstashStore({
        // No retries: the client would otherwise retry a refused connection five times (about 4 s).
        connection: client(
          { url: `http://127.0.0.1:${await closedPort()}`, token: 'unused' },
          { enableAutoPipelining, retry: false },
        ),
      }),
  })
}
