import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  type TableDescription,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb'
import { errors } from '@verrou/core'

/** The table's partition key: the lock key, a string. The table has no sort key. */
export const KEY_ATTRIBUTE = 'pk'
/** Epoch seconds after which DynamoDB's TTL may delete the item (the table's TTL attribute). */
export const TTL_ATTRIBUTE = 'ttl'

/** DynamoDB's own rule for table names, checked here so a bad name fails before any request. */
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/

export function validateTableName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !TABLE_NAME.test(name)) {
    throw new errors.E_INVALID_ARGUMENT(
      `DynamoDB table name must be 3-255 characters of a-z, A-Z, 0-9, "_", "-" or ".", got ${JSON.stringify(name)}`,
    )
  }
}

export interface EnsureTableOptions {
  /** How long to wait for a table being created to become ACTIVE. */
  activeTimeout: number
}

/**
 * Makes sure `table` exists with the key schema the store needs, is ACTIVE and has TTL enabled on
 * `TTL_ATTRIBUTE`. Safe to run from many processes at once: a table or TTL setting someone else created
 * in the meantime is accepted.
 */
export async function ensureTable(client: DynamoDBClient, table: string, options: EnsureTableOptions): Promise<void> {
  // Both reads at once: on a warm table (the common case) this costs one round trip of latency.
  const [described, ttl] = await Promise.allSettled([
    client.send(new DescribeTableCommand({ TableName: table })),
    client.send(new DescribeTimeToLiveCommand({ TableName: table })),
  ])
  let ttlEnabled = false
  if (described.status === 'fulfilled') {
    checkKeySchema(table, described.value.Table)
    if (!isUsable(described.value.Table)) await waitUntilActive(client, table, options.activeTimeout)
    if (ttl.status === 'fulfilled') ttlEnabled = isTtlOn(ttl.value.TimeToLiveDescription)
    // The TTL read can land before a table another store is creating right now exists: then enable it below.
    else if (errorName(ttl.reason) !== 'ResourceNotFoundException') throw ttl.reason
  } else if (errorName(described.reason) === 'ResourceNotFoundException') {
    await createTable(client, table)
    await waitUntilActive(client, table, options.activeTimeout)
  } else {
    throw described.reason
  }
  if (!ttlEnabled) await enableTtl(client, table)
}

async function createTable(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: KEY_ATTRIBUTE, KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: KEY_ATTRIBUTE, AttributeType: 'S' }],
      }),
    )
  } catch (error) {
    // Another process created it first: fine, as long as its schema is ours (checked while waiting).
    if (errorName(error) !== 'ResourceInUseException') throw error
  }
}

async function waitUntilActive(client: DynamoDBClient, table: string, timeout: number): Promise<void> {
  const deadline = Date.now() + timeout
  for (let pause = 100; ; pause = Math.min(pause * 2, 2000)) {
    let description: TableDescription | undefined
    try {
      description = (await client.send(new DescribeTableCommand({ TableName: table }))).Table
    } catch (error) {
      // Right after CreateTable, DescribeTable may not see the table yet (eventual consistency).
      if (errorName(error) !== 'ResourceNotFoundException') throw error
    }
    if (description !== undefined) {
      checkKeySchema(table, description)
      if (isUsable(description)) return
    }
    if (Date.now() + pause > deadline) {
      throw errors.E_LOCK_STORAGE_ERROR.from(undefined, {
        operation: `prepare table "${table}"`,
        store: 'DynamoDB lock store',
        detail: `it did not become ACTIVE within ${timeout} ms`,
      })
    }
    await new Promise((resolve) => setTimeout(resolve, pause))
  }
}

async function enableTtl(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: table,
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      }),
    )
  } catch (error) {
    // A concurrent store enabled it between our read and our write: DynamoDB refuses a second enable.
    if (errorName(error) !== 'ValidationException') throw error
    const current = await client.send(new DescribeTimeToLiveCommand({ TableName: table }))
    if (!isTtlOn(current.TimeToLiveDescription)) throw error
  }
}

function checkKeySchema(table: string, description: TableDescription | undefined): void {
  const keys = description?.KeySchema ?? []
  const type = description?.AttributeDefinitions?.find((definition) => definition.AttributeName === KEY_ATTRIBUTE)
  const matches =
    keys.length === 1 && keys[0]?.AttributeName === KEY_ATTRIBUTE && keys[0].KeyType === 'HASH' && type?.AttributeType === 'S'
  if (!matches) {
    throw errors.E_LOCK_STORAGE_ERROR.from(undefined, {
      operation: `prepare table "${table}"`,
      store: 'DynamoDB lock store',
      detail:
        `it exists but its key schema is not the one locks need ` +
        `(a single string partition key named "${KEY_ATTRIBUTE}"): use another table name`,
    })
  }
}

/** UPDATING tables serve reads and writes; only CREATING (and deleting) ones do not. */
function isUsable(description: TableDescription | undefined): boolean {
  return description?.TableStatus === 'ACTIVE' || description?.TableStatus === 'UPDATING'
}

function isTtlOn(description: { TimeToLiveStatus?: string | undefined } | undefined): boolean {
  // Another TTL attribute already set on the table is left alone: a table has at most one, and the owner chose it.
  return description?.TimeToLiveStatus === 'ENABLED' || description?.TimeToLiveStatus === 'ENABLING'
}

/** The SDK's error name; compared by name because the user's client may come from another copy of the SDK. */
export function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined
}
