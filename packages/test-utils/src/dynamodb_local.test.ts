import { expect, test } from 'vitest'
import { startDynamoDBLocal } from './dynamodb_local.js'
import { accepts } from './free_port.js'

// One JVM start, so the file stays short on a shared machine: what matters is that it answers and goes away.
test('startDynamoDBLocal answers DynamoDB requests on its endpoint, and stop() ends it', async () => {
  const local = await startDynamoDBLocal()
  try {
    const response = await fetch(local.endpoint, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-amz-json-1.0',
        'X-Amz-Target': 'DynamoDB_20120810.ListTables',
        Authorization:
          'AWS4-HMAC-SHA256 Credential=verrou/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00',
      },
      body: '{}',
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toHaveProperty('TableNames')
  } finally {
    await local.stop()
  }
  expect(await accepts(local.port)).toBe(false)
  await local.stop()
})
