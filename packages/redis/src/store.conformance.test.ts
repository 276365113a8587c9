import type { LockStore } from '@verrou/core'
import { runLockStoreConformance } from '@verrou/core/test-suite'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, test } from 'vitest'
import { connect, unreachableConnection } from '../test/connections.js'
import { RedisStore } from './store.js'

// Two connections stand for two processes; every store the suite asks for gets its own subscriber.
let connections: Redis[] = []
let created = 0
const unreachable = new Set<Redis>()

beforeAll(() => {
  connections = [connect(), connect()]
})

afterAll(async () => {
  await Promise.all(connections.map((connection) => connection.quit()))
  for (const connection of unreachable) connection.disconnect()
})

runLockStoreConformance({
  name: 'RedisStore (ioredis)',
  runner: { describe, test, afterAll },
  capabilities: { releaseNotifications: true, close: true, waitQueue: true, sharedLocks: true },
  // A grace of 1 s (the least allowed): the suite's idle-key fencing test then runs past it, so tokens
  // must keep increasing from the server clock once the counter itself has expired.
  createStore: () =>
    new RedisStore({ connection: connections[created++ % 2]!, prefix: 'verrou-test:', fencingCounterGrace: 1000 }),
  createUnreachableStore: async () => {
    const connection = await unreachableConnection()
    unreachable.add(connection)
    return new RedisStore({ connection })
  },
  closeStore: (store: LockStore) => store.close?.(),
})
