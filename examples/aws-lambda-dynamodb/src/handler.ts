import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { type LockStore, Verrou } from '@verrou/core'
import { dynamodbStore } from '@verrou/dynamodb'
import { type JobResult, sendDailyDigest } from './job.js'

/** The parts of an EventBridge scheduled event this handler reads. */
export interface ScheduledEvent {
  id: string
  /** The scheduled time, identical in every duplicate delivery of one schedule slot. */
  time: string
}

/** The parts of the Lambda context this handler reads. */
export interface LambdaContext {
  awsRequestId: string
  getRemainingTimeInMillis(): number
}

export type HandlerResult =
  | { status: 'ran'; requestId: string; fencingToken: number | undefined; result: JobResult }
  | { status: 'skipped'; requestId: string; reason: string }

export type Job = (input: { slot: string; fencingToken: number | undefined; signal: AbortSignal }) => Promise<JobResult>

/**
 * A handler that runs `job` at most once at a time per schedule slot, however many invocations race for
 * it (EventBridge delivers at least once, and retries overlap with slow runs).
 */
export function createHandler({ store, job }: { store: LockStore; job: Job }) {
  // Built once per container, reused by every warm invocation.
  const verrou = new Verrou({ default: 'dynamodb', stores: { dynamodb: { driver: store } }, operationTimeout: '5s' })

  return async function handler(event: ScheduledEvent, context: LambdaContext): Promise<HandlerResult> {
    const slot = event.time
    // Lease = what is left of this invocation: if Lambda kills it at its timeout, the lock frees itself then.
    const lock = verrou.createLock(`daily-digest:${slot}`, context.getRemainingTimeInMillis())
    const [ran, result] = await lock.runImmediately(({ fencingToken, signal }) => job({ slot, fencingToken, signal }))
    if (!ran) return { status: 'skipped', requestId: context.awsRequestId, reason: 'another invocation holds the lock' }
    return { status: 'ran', requestId: context.awsRequestId, fencingToken: lock.fencingToken, result }
  }
}

/** Short timeouts and few retries: a Lambda should fail fast rather than spend its time on a dead endpoint. */
function clientFromEnvironment(): DynamoDBClient {
  return new DynamoDBClient({
    // Unset in AWS (the SDK finds the regional endpoint); set to DynamoDB Local when running locally.
    endpoint: process.env.DYNAMODB_ENDPOINT || undefined,
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  })
}

/** The function Lambda calls: configure it as `handler.handler`. */
export const handler = createHandler({
  store: dynamodbStore({
    client: clientFromEnvironment(),
    table: { name: process.env.LOCK_TABLE_NAME ?? 'verrou-locks' },
    // In production let infrastructure code create the table and set this to false (see the README).
    autoCreateTable: process.env.LOCK_TABLE_AUTO_CREATE !== 'false',
  }),
  job: sendDailyDigest,
})
