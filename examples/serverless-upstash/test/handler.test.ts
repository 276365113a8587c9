import { Redis } from '@upstash/redis'
import { redisUrl, uniqueName } from '@verrou/test-utils/connection-settings'
import { startUpstashRestServer, type UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { createHandler, type Job } from '../src/handler.js'

let server: UpstashRestServer
let redis: Redis

beforeAll(async () => {
  server = await startUpstashRestServer({ redisUrl, token: uniqueName('example-test') })
  redis = new Redis({ url: server.url, token: server.token, enableTelemetry: false })
})

afterAll(async () => {
  await server?.close()
})

const uniqueJob = (label: string) => uniqueName(label)
const post = (jobId: string) => new Request(`https://functions.example/?job=${jobId}`, { method: 'POST' })

test('invocations racing on one job: exactly one runs it, the others answer 409, a later one sees it done', async () => {
  let runs = 0
  const job: Job = async (id, { fencingToken }) => {
    runs += 1
    await new Promise((resolve) => setTimeout(resolve, 200))
    return `${id}#${fencingToken}`
  }
  // Separate handlers stand for separate function instances.
  const handlers = Array.from({ length: 5 }, () => createHandler({ redis, job }))
  const jobId = uniqueJob('race')
  const responses = await Promise.all(handlers.map((handler) => handler(post(jobId))))
  expect(responses.map((response) => response.status).sort()).toEqual([200, 409, 409, 409, 409])
  expect(runs).toBe(1)
  const later = await handlers[0]!(post(jobId))
  // Tokens come from the server's clock (microseconds), so only their shape is known here.
  const done = (await later.json()) as { status: string; result: string }
  expect(done).toMatchObject({ status: 'already-done', result: expect.stringMatching(/#\d+$/) })
  expect(done.result.startsWith(`${jobId}#`)).toBe(true)
  expect(runs).toBe(1)
})

test('a job that fails releases the lock, so a retry runs it', async () => {
  let attempts = 0
  const handler = createHandler({
    redis,
    job: async () => {
      attempts += 1
      if (attempts === 1) throw new Error('upstream timed out')
      return 'ok'
    },
  })
  const jobId = uniqueJob('retry')
  const failed = await handler(post(jobId))
  expect(failed.status).toBe(500)
  expect(await failed.json()).toEqual({ status: 'failed', error: 'upstream timed out' })
  const retried = await handler(post(jobId))
  expect(await retried.json()).toMatchObject({ status: 'done', result: 'ok', fencingToken: expect.any(Number) })
})

test('bad requests are refused before any lock is taken', async () => {
  const handler = createHandler({ redis, job: async () => 'never' })
  expect((await handler(new Request('https://functions.example/?job=x'))).status).toBe(405)
  expect((await handler(new Request('https://functions.example/?job=a%20b', { method: 'POST' }))).status).toBe(400)
  expect((await handler(new Request('https://functions.example/', { method: 'POST' }))).status).toBe(400)
})
