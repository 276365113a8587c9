/**
 * `pnpm start`: runs the handler against DynamoDB Local, invoked five times at once for the same schedule
 * slot, as overlapping deliveries would. Exactly one of them runs the job.
 */
import { randomUUID } from 'node:crypto'
// The driver's own test helper: starts DynamoDB Local (Java 17) in memory on a free port.
import { startDynamoDBLocal } from '../../../packages/dynamodb/test/dynamodb_local.js'

const INVOCATIONS = 5

const local = await startDynamoDBLocal()
let exitCode = 0
try {
  process.env.DYNAMODB_ENDPOINT = local.endpoint
  process.env.AWS_REGION ??= 'us-east-1'
  process.env.AWS_ACCESS_KEY_ID ??= 'local'
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local'
  process.env.LOCK_TABLE_NAME ??= 'verrou-locks'
  // Imported after the environment is set: the handler reads it when its module loads, as in Lambda.
  const { handler } = await import('./handler.js')

  console.log(`DynamoDB Local on ${local.endpoint}; invoking the handler ${INVOCATIONS} times at once\n`)
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
  if (ran !== 1) exitCode = 1
} catch (error) {
  console.error(error)
  exitCode = 1
} finally {
  await local.stop()
}
process.exit(exitCode)
