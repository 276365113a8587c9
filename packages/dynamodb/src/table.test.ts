import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  ListTablesCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb'
import { errors } from '@verrou/core'
import { afterAll, describe, expect, test } from 'vitest'
import { recordCommands, testClient, uniqueKey, uniqueTableName } from '../test/client.js'
import { dynamodbStore } from './store.js'

const clients: DynamoDBClient[] = []
function client(): DynamoDBClient {
  const created = testClient()
  clients.push(created)
  return created
}

afterAll(() => {
  for (const created of clients) created.destroy()
})

async function describeTable(name: string) {
  const admin = client()
  const [table, ttl] = await Promise.all([
    admin.send(new DescribeTableCommand({ TableName: name })),
    admin.send(new DescribeTimeToLiveCommand({ TableName: name })),
  ])
  return { table: table.Table, ttl: ttl.TimeToLiveDescription }
}

async function createTableByHand(name: string, keyName = 'pk') {
  await client().send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: keyName, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: keyName, AttributeType: 'S' }],
    }),
  )
}

describe('autoCreateTable', () => {
  test('creates a missing table with the key schema, on-demand billing and the TTL attribute', async () => {
    const name = uniqueTableName('fresh')
    const locks = dynamodbStore({ client: client(), table: { name } })
    expect((await locks.acquire(uniqueKey(), 'a', 1000)).acquired).toBe(true)
    const { table, ttl } = await describeTable(name)
    expect(table?.TableStatus).toBe('ACTIVE')
    expect(table?.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }])
    expect(table?.AttributeDefinitions).toEqual([{ AttributeName: 'pk', AttributeType: 'S' }])
    expect(table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST')
    expect(ttl).toEqual({ TimeToLiveStatus: 'ENABLED', AttributeName: 'ttl' })
  })

  test('uses an existing table and enables TTL on it if it was off', async () => {
    const name = uniqueTableName('existing')
    await createTableByHand(name)
    const locks = dynamodbStore({ client: client(), table: { name } })
    expect((await locks.acquire(uniqueKey(), 'a', 1000)).acquired).toBe(true)
    expect((await describeTable(name)).ttl).toEqual({ TimeToLiveStatus: 'ENABLED', AttributeName: 'ttl' })
  })

  test('on a ready table, the check costs two parallel reads once per store, then nothing', async () => {
    const name = uniqueTableName('ready')
    await createTableByHand(name)
    await client().send(
      new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true } }),
    )
    const own = client()
    const sent = recordCommands(own)
    const locks = dynamodbStore({ client: own, table: { name } })
    const key = uniqueKey()
    await Promise.all([locks.acquire(key, 'a', 1000), locks.isLocked(key), locks.isLocked(key)])
    await locks.release(key, 'a')
    expect([...sent].sort()).toEqual(
      [
        'DescribeTableCommand',
        'DescribeTimeToLiveCommand',
        'UpdateItemCommand',
        'GetItemCommand',
        'GetItemCommand',
        'UpdateItemCommand',
      ].sort(),
    )
  })

  test('stores creating the same table at the same moment all succeed, and exactly one gets the lock', async () => {
    const name = uniqueTableName('race')
    const key = uniqueKey()
    const stores = Array.from({ length: 8 }, () => dynamodbStore({ client: client(), table: { name } }))
    const results = await Promise.all(stores.map((each, index) => each.acquire(key, `owner-${index}`, 10_000)))
    expect(results.filter((result) => result.acquired)).toHaveLength(1)
    const { table, ttl } = await describeTable(name)
    expect(table?.TableStatus).toBe('ACTIVE')
    expect(ttl).toEqual({ TimeToLiveStatus: 'ENABLED', AttributeName: 'ttl' })
  })

  test('a table with another key schema is refused with a clear storage error', async () => {
    const name = uniqueTableName('foreign')
    await createTableByHand(name, 'id')
    const locks = dynamodbStore({ client: client(), table: { name } })
    const error = await locks.acquire(uniqueKey(), 'a', 1000).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    expect((error as Error).message).toMatch(/key schema/)
  })

  test('with autoCreateTable off, nothing is created and no table-level call is made', async () => {
    const name = uniqueTableName('manual')
    const own = client()
    const sent = recordCommands(own)
    const locks = dynamodbStore({ client: own, table: { name }, autoCreateTable: false })
    await expect(locks.isLocked(uniqueKey())).rejects.toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    expect(sent).toEqual(['GetItemCommand'])
    const tables = await client().send(new ListTablesCommand({}))
    expect(tables.TableNames).not.toContain(name)
  })

  test('with autoCreateTable off, a table made from the README definition works', async () => {
    const name = uniqueTableName('readme')
    await createTableByHand(name)
    const locks = dynamodbStore({ client: client(), table: { name }, autoCreateTable: false })
    const key = uniqueKey()
    expect((await locks.acquire(key, 'a', 1000)).acquired).toBe(true)
    expect(await locks.isLocked(key)).toBe(true)
  })
})
