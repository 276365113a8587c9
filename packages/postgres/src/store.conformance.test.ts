import { runLockStoreConformance } from '@verrou/core/test-suite'
import { afterAll, describe, test } from 'vitest'
import { connectionConfig, createPool, dropTable, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

const pool = createPool()
const tableName = uniqueTableName('verrou_conformance')
// Nothing listens on port 1: connections are refused at once.
const unreachablePool = createPool({ ...connectionConfig(), connectionString: undefined, host: '127.0.0.1', port: 1 })

afterAll(async () => {
  await dropTable(pool, tableName)
  await pool.end()
  await unreachablePool.end()
})

runLockStoreConformance({
  name: 'PostgresStore (pg Pool)',
  createStore: () => new PostgresStore({ connection: pool, tableName }),
  createUnreachableStore: () => new PostgresStore({ connection: unreachablePool, tableName }),
  closeStore: (store) => (store as PostgresStore).close(),
  runner: { describe, test, afterAll },
  capabilities: { releaseNotifications: true, close: true, waitQueue: true, sharedLocks: true },
})
