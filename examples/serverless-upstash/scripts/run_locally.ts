/**
 * `pnpm start`: runs the handler on this machine against your Upstash database (UPSTASH_REDIS_REST_URL and
 * UPSTASH_REDIS_REST_TOKEN, from the Upstash console), firing five invocations of the same job at once, as a
 * retrying scheduler might. Exactly one runs the job.
 */
import { Redis } from '@upstash/redis'
import { createHandler } from '../src/handler.js'

if (!process.env.UPSTASH_REDIS_REST_URL || !process.env.UPSTASH_REDIS_REST_TOKEN) {
  console.error('Set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN to your Upstash database (see the README).')
  process.exit(1)
}
const redis = Redis.fromEnv()
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
  const statuses = await Promise.all([1, 2, 3, 4, 5].map((n) => invoke(`invocation ${n}:`)))
  await invoke('a later retry:')
  console.log(`the job ran ${runs} time(s)`)
  if (runs !== 1 || statuses.filter((status) => status === 200).length !== 1) process.exitCode = 1
} finally {
  // The lock's fencing counter stays in Redis by design; a demo run removes its own.
  await redis.del(`jobs:done:${jobId}`, `verrou:{jobs:${jobId}}:fence`)
}
