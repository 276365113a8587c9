import { randomUUID } from 'node:crypto'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { dynamodbStore } from '@verrou/dynamodb'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type DynamoDBLocal, startDynamoDBLocal } from '../../../packages/dynamodb/test/dynamodb_local.js'
import { createHandler, type Job } from './handler.js'

let local: DynamoDBLocal | undefined
let client: DynamoDBClient

beforeAll(async () => {
  let endpoint = process.env.DYNAMODB_ENDPOINT
  if (!endpoint) {
    local = await startDynamoDBLocal()
    endpoint = local.endpoint
  }
  client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  })
})

afterAll(async () => {
  client?.destroy()
  await local?.stop()
})

function setup(job: Job, table = `verrou-example-${randomUUID()}`) {
  return createHandler({ store: dynamodbStore({ client, table: { name: table }, clockSkewAllowance: 50 }), job })
}

function context() {
  const deadline = Date.now() + 10_000
  return { awsRequestId: randomUUID(), getRemainingTimeInMillis: () => deadline - Date.now() }
}

describe('the scheduled-job Lambda handler', () => {
  test('concurrent invocations for one schedule slot: exactly one runs the job', async () => {
    let running = 0
    let runs = 0
    const handler = setup(async ({ slot }) => {
      running++
      runs++
      expect(running).toBe(1)
      await new Promise((resolve) => setTimeout(resolve, 200))
      running--
      return { slot, sentAt: new Date().toISOString() }
    })
    const event = { id: randomUUID(), time: '2026-01-01T00:00:00Z' }
    const results = await Promise.all(Array.from({ length: 8 }, () => handler(event, context())))
    expect(results.filter((result) => result.status === 'ran')).toHaveLength(1)
    expect(results.filter((result) => result.status === 'skipped')).toHaveLength(7)
    expect(runs).toBe(1)
  })

  test('a duplicate delivered after the job finished is skipped: the slot stays done', async () => {
    let runs = 0
    const handler = setup(async ({ slot }) => {
      runs++
      return { slot, sentAt: new Date().toISOString() }
    })
    const event = { id: randomUUID(), time: '2026-01-05T00:00:00Z' }
    expect((await handler(event, context())).status).toBe('ran')
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect((await handler(event, context())).status).toBe('skipped')
    expect(runs).toBe(1)
  })

  test('different schedule slots do not block each other', async () => {
    const handler = setup(async ({ slot }) => ({ slot, sentAt: new Date().toISOString() }))
    const results = await Promise.all(
      ['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'].map((time) => handler({ id: randomUUID(), time }, context())),
    )
    expect(results.map((result) => result.status)).toEqual(['ran', 'ran'])
  })

  test('a job that fails releases the lock, so a retried delivery can run it', async () => {
    let attempts = 0
    const handler = setup(async ({ slot }) => {
      attempts++
      if (attempts === 1) throw new Error('downstream unavailable')
      return { slot, sentAt: new Date().toISOString() }
    })
    const event = { id: randomUUID(), time: '2026-01-03T00:00:00Z' }
    await expect(handler(event, context())).rejects.toThrow('downstream unavailable')
    const retried = await handler(event, context())
    expect(retried.status).toBe('ran')
  })

  test('the lease ends with the invocation: a crashed run frees the slot when its time is up', async () => {
    const table = `verrou-example-${randomUUID()}`
    const handler = setup(async ({ slot }) => ({ slot, sentAt: new Date().toISOString() }), table)
    const event = { id: randomUUID(), time: '2026-01-04T00:00:00Z' }
    // An invocation with 300 ms left that never finishes (the container was frozen or killed).
    const stuck = setup(() => new Promise(() => {}), table)
    void stuck(event, { awsRequestId: 'stuck', getRemainingTimeInMillis: () => 300 })
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await handler(event, context())).status).toBe('skipped')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect((await handler(event, context())).status).toBe('ran')
  })
})
