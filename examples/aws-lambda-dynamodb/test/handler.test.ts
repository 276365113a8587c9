/**
 * Tests the deployable artifact, dist/handler.mjs (built by `pnpm build`, which `pnpm test` runs first),
 * against DynamoDB Local: what Lambda loads is what is tested. Types come from the source it was built from.
 */
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import { dynamodbConfig } from '@verrou/test-utils/connection-settings'
import { type DynamoDBLocal, startDynamoDBLocal } from '@verrou/test-utils/dynamodb-local'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Environment, Job } from '../src/handler.js'

type Artifact = typeof import('../src/handler.js')

let local: DynamoDBLocal | undefined
let environment: Environment
let artifact: Artifact

beforeAll(async () => {
  let endpoint = dynamodbConfig().endpoint
  if (!endpoint) {
    local = await startDynamoDBLocal()
    endpoint = local.endpoint
  }
  // What the function's configuration holds in AWS, plus the endpoint and credentials of the local engine.
  environment = {
    DYNAMODB_ENDPOINT: endpoint,
    LOCK_TABLE_NAME: `verrou-example-${randomUUID()}`,
    AWS_REGION: dynamodbConfig().region,
    AWS_ACCESS_KEY_ID: dynamodbConfig().credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: dynamodbConfig().credentials.secretAccessKey,
  }
  // The bundle reads its configuration when it loads, as it does in a Lambda container.
  Object.assign(process.env, environment)
  const path = new URL('../dist/handler.mjs', import.meta.url).href
  artifact = await import(/* @vite-ignore */ path)
})

afterAll(async () => {
  await local?.stop()
})

/** A handler from the artifact with the job replaced, on a table of its own unless one is given. */
function withJob(job: Job, table = `verrou-example-${randomUUID()}`) {
  return artifact.createHandler({ store: artifact.storeFromEnvironment({ ...environment, LOCK_TABLE_NAME: table }), job })
}

function context(remainingMs = 10_000) {
  const deadline = Date.now() + remainingMs
  return { awsRequestId: randomUUID(), getRemainingTimeInMillis: () => deadline - Date.now() }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('the built Lambda handler (dist/handler.mjs)', () => {
  test('is one self-contained ES module that leaves only the AWS SDK to the runtime', async () => {
    const code = await readFile(new URL('../dist/handler.mjs', import.meta.url), 'utf8')
    const imported = [...code.matchAll(/^import\s[^'"]*?["']([^"']+)["']/gm)].map((match) => match[1] ?? '')
    expect(imported.length).toBeGreaterThan(0)
    const external = imported.filter(
      (name) => !name.startsWith('@aws-sdk/') && !builtinModules.includes(name.replace(/^node:/, '')),
    )
    expect(external).toEqual([])
    expect(code).not.toMatch(/from ["']@verrou\//)
  })

  test('the exported handler, as deployed: concurrent invocations for one slot run the job once', async () => {
    const event = { id: randomUUID(), time: new Date().toISOString() }
    const results = await Promise.all(Array.from({ length: 6 }, () => artifact.handler(event, context())))
    expect(results.filter((result) => result.status === 'ran')).toHaveLength(1)
    expect(results.filter((result) => result.status === 'skipped')).toHaveLength(5)
    // A duplicate delivered once the job is done is skipped too: the slot stays marked.
    expect((await artifact.handler(event, context())).status).toBe('skipped')
  })

  test('concurrent invocations: exactly one runs the job, and never two at once', async () => {
    let running = 0
    let runs = 0
    const handler = withJob(async ({ slot }) => {
      running++
      runs++
      expect(running).toBe(1)
      await sleep(200)
      running--
      return { slot, sentAt: new Date().toISOString() }
    })
    const event = { id: randomUUID(), time: '2026-01-01T00:00:00Z' }
    const results = await Promise.all(Array.from({ length: 8 }, () => handler(event, context())))
    expect(results.filter((result) => result.status === 'ran')).toHaveLength(1)
    expect(runs).toBe(1)
  })

  test('different schedule slots do not block each other', async () => {
    const handler = withJob(async ({ slot }) => ({ slot, sentAt: new Date().toISOString() }))
    const results = await Promise.all(
      ['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'].map((time) => handler({ id: randomUUID(), time }, context())),
    )
    expect(results.map((result) => result.status)).toEqual(['ran', 'ran'])
  })

  test('a job that fails releases the lock, so a retried delivery can run it', async () => {
    let attempts = 0
    const handler = withJob(async ({ slot }) => {
      attempts++
      if (attempts === 1) throw new Error('downstream unavailable')
      return { slot, sentAt: new Date().toISOString() }
    })
    const event = { id: randomUUID(), time: '2026-01-03T00:00:00Z' }
    await expect(handler(event, context())).rejects.toThrow('downstream unavailable')
    expect((await handler(event, context())).status).toBe('ran')
  })

  test('the lease ends with the invocation: a crashed run frees the slot once its time is up', async () => {
    const table = `verrou-example-${randomUUID()}`
    const handler = withJob(async ({ slot }) => ({ slot, sentAt: new Date().toISOString() }), table)
    const event = { id: randomUUID(), time: '2026-01-04T00:00:00Z' }
    // An invocation with 300 ms left that never finishes (the container was frozen or killed).
    const stuck = withJob(() => new Promise(() => {}), table)
    void stuck(event, context(300))
    await sleep(100)
    expect((await handler(event, context())).status).toBe('skipped')
    // Free once the 300 ms lease and the store's clock-skew allowance (1 s by default) have passed.
    const freedBy = Date.now() + 5_000
    let status = 'skipped'
    while (status === 'skipped' && Date.now() < freedBy) {
      await sleep(200)
      status = (await handler(event, context())).status
    }
    expect(status).toBe('ran')
  })
})
