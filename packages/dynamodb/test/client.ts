import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { dynamodbConfig } from '@verrou/test-utils/connection-settings'
import { inject } from 'vitest'

/**
 * A client for the test engine. Static credentials (DynamoDB Local accepts any), few retries and short
 * timeouts so that a dead endpoint fails fast: what the README recommends for Lambda too.
 */
export function testClient(
  endpoint: string = inject('dynamodbEndpoint'),
  { requestTimeout = 2000 }: { requestTimeout?: number } = {},
): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: dynamodbConfig().region,
    credentials: dynamodbConfig().credentials,
    maxAttempts: 2,
    // Without throwOnRequestTimeout the SDK only logs a warning when requestTimeout passes and keeps waiting.
    requestHandler: { connectionTimeout: 1000, requestTimeout, throwOnRequestTimeout: true },
  })
}

/** A table name no other test run uses. */
export function uniqueTableName(label = 'locks'): string {
  return `verrou-test-${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
}

export function uniqueKey(label = 'key'): string {
  return `${label}:${Math.random().toString(36).slice(2)}`
}

/** Records the name of every command the client sends (first attempt only), to count round trips. */
export function recordCommands(client: DynamoDBClient): string[] {
  const sent: string[] = []
  client.middlewareStack.add(
    (next, context) => (args) => {
      sent.push(String(context.commandName))
      return next(args)
    },
    { step: 'initialize', name: 'verrouRecordCommands' },
  )
  return sent
}

/**
 * Makes the next request's reply get lost after DynamoDB applied it, the way a dropped connection does:
 * the SDK sees a retryable timeout and sends the same request again.
 */
export function loseNextReply(client: DynamoDBClient): void {
  let armed = true
  client.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args)
      if (armed) {
        armed = false
        throw Object.assign(new Error('simulated lost reply'), { name: 'TimeoutError', $retryable: {} })
      }
      return result
    },
    { step: 'deserialize', name: 'verrouLoseNextReply' },
  )
}
