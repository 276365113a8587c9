/**
 * Runs the handler on this machine: starts the local Upstash REST server (the one the @verrou/upstash
 * tests use) in front of the Redis at REDIS_URL (default 127.0.0.1:6379), then fires five invocations of
 * the same job at once, as a retrying scheduler might. Exactly one runs the job.
 *
 *   pnpm --filter @verrou/example-serverless-upstash start
 */
import { Redis } from '@upstash/redis'
import { startUpstashRestServer } from '../../../packages/upstash/test/rest_server.js'
import { createHandler } from './handler.js'

const server = await startUpstashRestServer({
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  token: 'local-demo-token',
})
const redis = new Redis({ url: server.url, token: server.token, enableTelemetry: false })
const jobId = `nightly-report-${Date.now()}`
let runs = 0

const handler = createHandler({
  redis,
  job: async (id, { fencingToken }) => {
    runs += 1
    await new Promise((resolve) => setTimeout(resolve, 300))
    return `report ${id} written with fencing token ${fencingToken}`
  },
})

const invoke = async (label: string) => {
  const response = await handler(new Request(`https://example.com/?job=${jobId}`, { method: 'POST' }))
  console.log(label, response.status, JSON.stringify(await response.json()))
  return response.status
}

try {
  console.log(`Upstash REST server for the demo at ${server.url}`)
  const statuses = await Promise.all([1, 2, 3, 4, 5].map((n) => invoke(`invocation ${n}:`)))
  await invoke('a later retry:')
  console.log(`the job ran ${runs} time(s)`)
  if (runs !== 1 || statuses.filter((status) => status === 200).length !== 1) process.exitCode = 1
} finally {
  // The lock's fencing counter stays in Redis by design; a demo run removes its own.
  await redis.del(`jobs:done:${jobId}`, `verrou:{jobs:${jobId}}:fence`)
  await server.close()
}
