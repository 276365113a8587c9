import { runLockStoreConformance } from '@verrou/core/test-suite'
import pg from 'pg'
import { afterAll, beforeAll, describe, test } from 'vitest'
import { connectionConfig, createClient, dropTable, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

// The same suite on a single pg Client: the store queues its statements and opens its own listener.
const tableName = uniqueTableName('verrou_conformance_client')
let client: pg.Client

beforeAll(async () => {
  client = await createClient()
})

afterAll(async () => {
  await dropTable(client, tableName)
  await client.end()
})

runLockStoreConformance({
  name: 'PostgresStore (pg Client)',
  createStore: () => new PostgresStore({ connection: client, tableName }),
  // A client whose connection was refused (nothing listens on port 1): pg refuses every query on it.
  createUnreachableStore: async () => {
    const unreachable = new pg.Client({ ...connectionConfig(), connectionString: undefined, host: '127.0.0.1', port: 1 })
    unreachable.on('error', () => undefined)
    await unreachable.connect().catch(() => undefined)
    return new PostgresStore({ connection: unreachable, tableName })
  },
  closeStore: (store) => (store as PostgresStore).close(),
  runner: { describe, test, beforeAll, afterAll },
})
