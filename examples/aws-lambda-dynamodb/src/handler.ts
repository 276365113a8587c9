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

/** How long a finished slot stays marked done: far longer than EventBridge takes to redeliver an event. */
const DONE_FOR = '24h'

/**
 * A handler that runs `job` once per schedule slot, however many invocations race for it (EventBridge
 * delivers at least once, and retries overlap with slow runs). The lock is the slot's marker: held while
 * the job runs, kept for a day once it succeeded, released if it failed so a retried delivery can run it.
 */
export function createHandler({ store, job }: { store: LockStore; job: Job }) {
  // Built once per container, reused by every warm invocation.
  const verrou = new Verrou({ default: 'dynamodb', stores: { dynamodb: { driver: store } }, operationTimeout: '5s' })

  return async function handler(event: ScheduledEvent, context: LambdaContext): Promise<HandlerResult> {
    const slot = event.time
    // Lease = what is left of this invocation: if Lambda kills it at its timeout, the lock frees itself then.
    const lock = verrou.createLock(`daily-digest:${slot}`, context.getRemainingTimeInMillis())
    if (!(await lock.acquireImmediately())) {
      return { status: 'skipped', requestId: context.awsRequestId, reason: 'this slot is running or already done' }
    }
    // Aborts if the lease runs out before the job ends: the job should stop writing then.
    const watch = lock.keepAlive({ extend: false })
    try {
      const result = await job({ slot, fencingToken: lock.fencingToken, signal: watch.signal })
      watch.stop()
      await lock.extend(DONE_FOR)
      return { status: 'ran', requestId: context.awsRequestId, fencingToken: lock.fencingToken, result }
    } catch (error) {
      watch.stop()
      await lock.release().catch(() => {})
      throw error
    }
  }
}

/** What the handler reads from its environment (the function's configuration in AWS). */
export type Environment = Record<string, string | undefined>

/**
 * The lock store the deployed function uses. Short timeouts and few retries: a Lambda should fail fast
 * rather than spend its time on a dead endpoint.
 */
export function storeFromEnvironment(env: Environment = process.env): LockStore {
  const client = new DynamoDBClient({
    // Unset in AWS (the SDK finds the regional endpoint); set to DynamoDB Local when running locally.
    endpoint: env.DYNAMODB_ENDPOINT || undefined,
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  })
  return dynamodbStore({
    client,
    table: { name: env.LOCK_TABLE_NAME ?? 'verrou-locks' },
    // In production let infrastructure code create the table and set this to false (see the README).
    autoCreateTable: env.LOCK_TABLE_AUTO_CREATE !== 'false',
  })
}

/** The function Lambda calls: configure it as `handler.handler` (the file is dist/handler.mjs). */
export const handler = createHandler({ store: storeFromEnvironment(), job: sendDailyDigest })
