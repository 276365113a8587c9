import { runLockStoreConformance } from '@verrou/core/test-suite'
import type pg from 'pg'
import { afterAll, beforeAll, describe, test } from 'vitest'
import { createClient, dropTable, uniqueTableName } from '../test/postgres.js'
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
  // A client whose session the server ended: pg refuses every further query on it. (A Client whose connect
  // failed is no good here: pg 8 leaves queries on it pending for ever, see the README.)
  createUnreachableStore: async () => {
    const doomed = await createClient()
    const ended = new Promise((resolve) => doomed.once('error', resolve))
    const { rows } = await doomed.query('SELECT pg_backend_pid() AS pid')
    await client.query('SELECT pg_terminate_backend($1)', [rows[0].pid])
    await ended
    return new PostgresStore({ connection: doomed, tableName })
  },
  closeStore: (store) => (store as PostgresStore).close(),
  runner: { describe, test, afterAll },
  capabilities: { releaseNotifications: true, close: true, waitQueue: true, sharedLocks: true },
})
