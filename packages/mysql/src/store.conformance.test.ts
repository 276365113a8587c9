import type { LockStore } from '@verrou/core'
import { runLockStoreConformance } from '@verrou/core/test-suite'
import type { Connection, Pool } from 'mysql2/promise'
import { afterAll, describe, test } from 'vitest'
import { closedPort, createTestConnection, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { mysqlStore } from './index.js'

const pool = createTestPool()
const tableName = uniqueTableName('conformance')
const opened: Array<Pool | Connection> = [pool]
const runner = { describe, test, afterAll }
const capabilities = { releaseNotifications: false, close: true, waitQueue: true, sharedLocks: true }

const unreachableStore = async () => {
  const unreachable = createTestPool({ port: await closedPort(), connectTimeout: 2_000 })
  opened.push(unreachable)
  return mysqlStore({ connection: unreachable, tableName })
}

runLockStoreConformance({
  name: 'MysqlStore (mysql2 pool)',
  createStore: () => mysqlStore({ connection: pool, tableName }),
  createUnreachableStore: unreachableStore,
  runner,
  capabilities,
})

// Each store on its own connection: two stores in one test stand for two processes. A connection is ended
// with its store, when the test that opened it ends: hundreds kept open would exhaust max_connections.
const connectionOf = new Map<LockStore, Connection>()
runLockStoreConformance({
  name: 'MysqlStore (one mysql2 connection per store)',
  createStore: async () => {
    const connection = await createTestConnection()
    const store = mysqlStore({ connection, tableName })
    connectionOf.set(store, connection)
    return store
  },
  closeStore: async (store) => {
    await store.close?.()
    const connection = connectionOf.get(store)
    connectionOf.delete(store)
    await connection?.end()
  },
  // A lone connection to a dead server cannot even be created, so this one is a pool too.
  createUnreachableStore: unreachableStore,
  runner,
  capabilities,
})

afterAll(async () => {
  await dropTables(pool, tableName)
  await Promise.all(opened.map((each) => each.end()))
})
