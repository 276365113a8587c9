import { ConditionalCheckFailedException, DeleteItemCommand, type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb'
import { type Counters, LEASE_MS, type Subject } from '../subject.js'
import { pollingClient } from './floor_polling.js'

/** The floor's table has one string hash key, `pk`. */
export const DYNAMODB_FLOOR_KEY = 'pk'

/**
 * The AWS SDK by hand: a conditional PutItem (free, or lease ended on this client's clock: DynamoDB has no
 * clock usable in conditions) and a DeleteItem conditioned on the owner.
 */
export function dynamodbFloorSubject(connect: (counters: Counters) => DynamoDBClient, table: string): Subject {
  return {
    id: 'dynamodb/floor',
    store: 'dynamodb',
    label: 'raw floor (AWS SDK)',
    role: 'floor',
    cycles: true,
    contention: true,
    async connect(counters, options) {
      const client = connect(counters)
      return pollingClient(options, {
        async tryAcquire(key, owner) {
          const now = Date.now()
          try {
            await client.send(
              new PutItemCommand({
                TableName: table,
                Item: { pk: { S: key }, owner: { S: owner }, expiresAt: { N: String(now + LEASE_MS) } },
                ConditionExpression: 'attribute_not_exists(pk) OR expiresAt <= :now',
                ExpressionAttributeValues: { ':now': { N: String(now) } },
              }),
            )
            return true
          } catch (error) {
            if (error instanceof ConditionalCheckFailedException) return false
            throw error
          }
        },
        async release(key, owner) {
          try {
            await client.send(
              new DeleteItemCommand({
                TableName: table,
                Key: { pk: { S: key } },
                ConditionExpression: '#owner = :owner',
                ExpressionAttributeNames: { '#owner': 'owner' },
                ExpressionAttributeValues: { ':owner': { S: owner } },
              }),
            )
            return true
          } catch (error) {
            if (error instanceof ConditionalCheckFailedException) return false
            throw error
          }
        },
        async close() {
          client.destroy()
        },
      })
    },
  }
}
