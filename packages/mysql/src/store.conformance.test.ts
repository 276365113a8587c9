import { runLockStoreConformance } from '@verrou/core/test-suite'
import { afterAll, beforeAll, describe, test } from 'vitest'
import { closedPort, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { mysqlStore } from './index.js'

const pool = createTestPool()
const tableName = uniqueTableName('conformance')
const unreachablePools: ReturnType<typeof createTestPool>[] = []

runLockStoreConformance({
  name: 'MysqlStore (mysql2 pool)',
  createStore: () => mysqlStore({ connection: pool, tableName }),
  createUnreachableStore: async () => {
    const unreachable = createTestPool({ port: await closedPort(), connectTimeout: 2_000 })
    unreachablePools.push(unreachable)
    return mysqlStore({ connection: unreachable, tableName })
  },
  runner: { describe, test, beforeAll, afterAll },
})

afterAll(async () => {
  await dropTables(pool, tableName)
  await Promise.all([pool, ...unreachablePools].map((each) => each.end()))
})
