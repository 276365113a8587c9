import { type AttributeValue, type DynamoDBClient, paginateScan } from '@aws-sdk/client-dynamodb'

/** Every item of `table`, by its key (`pk`), read with strongly consistent scans. */
export async function scanItems(client: DynamoDBClient, table: string): Promise<Map<string, Record<string, AttributeValue>>> {
  const items = new Map<string, Record<string, AttributeValue>>()
  for await (const page of paginateScan({ client }, { TableName: table, ConsistentRead: true })) {
    for (const item of page.Items ?? []) items.set(item.pk?.S ?? '', item)
  }
  return items
}
