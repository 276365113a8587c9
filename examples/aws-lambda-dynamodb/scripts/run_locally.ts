/**
 * `pnpm start`: builds dist/handler.mjs, the artifact Lambda runs, and invokes it five times at once for the
 * same schedule slot, as overlapping deliveries would. Exactly one of them runs the job. Needs DynamoDB at
 * DYNAMODB_ENDPOINT (default http://127.0.0.1:8000: `pnpm dynamodb-local` in another terminal).
 */
import { randomUUID } from 'node:crypto'

const INVOCATIONS = 5

process.env.DYNAMODB_ENDPOINT ??= 'http://127.0.0.1:8000'
process.env.AWS_REGION ??= 'us-east-1'
process.env.AWS_ACCESS_KEY_ID ??= 'local'
process.env.AWS_SECRET_ACCESS_KEY ??= 'local'
process.env.LOCK_TABLE_NAME ??= 'verrou-locks'
// Imported after the environment is set: the handler reads it when its module loads, as in Lambda.
const { handler }: typeof import('../src/handler.js') = await import(new URL('../dist/handler.mjs', import.meta.url).href)

console.log(`DynamoDB at ${process.env.DYNAMODB_ENDPOINT}; invoking dist/handler.mjs ${INVOCATIONS} times at once\n`)
const event = { id: randomUUID(), time: new Date().toISOString() }
const deadline = Date.now() + 30_000
const results = await Promise.all(
  Array.from({ length: INVOCATIONS }, () =>
    handler(event, { awsRequestId: randomUUID(), getRemainingTimeInMillis: () => deadline - Date.now() }),
  ),
)
for (const result of results) {
  const detail = result.status === 'ran' ? `ran the job (fencing token ${result.fencingToken})` : `skipped: ${result.reason}`
  console.log(`${result.requestId.slice(0, 8)}  ${detail}`)
}
const ran = results.filter((result) => result.status === 'ran').length
console.log(`\n${ran} of ${INVOCATIONS} invocations ran the job`)
// The SDK's keep-alive sockets would hold the process open.
process.exit(ran === 1 ? 0 : 1)
