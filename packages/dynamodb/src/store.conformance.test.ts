import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { runLockStoreConformance } from '@verrou/core/test-suite'
import { afterAll, describe, test } from 'vitest'
import { testClient, uniqueTableName } from '../test/client.js'
import { refusingEndpoint } from '../test/dead_endpoint.js'
import { dynamodbStore } from './store.js'

/** Small in tests so expiry tests stay fast; the suite waits this much longer for leases to end. */
const ALLOWANCE = 50
const table = uniqueTableName('conformance')
const clients: DynamoDBClient[] = []

function client(endpoint?: string): DynamoDBClient {
  const created = testClient(endpoint)
  clients.push(created)
  return created
}

runLockStoreConformance({
  name: 'DynamoDBStore',
  runner: { describe, test, afterAll },
  capabilities: { releaseNotifications: false, close: false, waitQueue: true, sharedLocks: true },
  expiryToleranceMs: ALLOWANCE,
  // A new client per store: two stores stand for two processes.
  createStore: () => dynamodbStore({ client: client(), table: { name: table }, clockSkewAllowance: ALLOWANCE }),
  createUnreachableStore: async () =>
    dynamodbStore({ client: client(await refusingEndpoint()), table: { name: table }, clockSkewAllowance: ALLOWANCE }),
})

afterAll(() => {
  for (const created of clients) created.destroy()
})
