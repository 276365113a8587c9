import type { Redis } from '@upstash/redis'
import { LockFactory } from '@verrou/core'
import { upstashStore } from '@verrou/upstash'

/**
 * A job that must run once even though its trigger may fire several times at once (a cron that retries, a
 * webhook delivered twice). Each invocation of the function races for a lock on the job; the winner runs
 * it and records that it is done; the others answer at once instead of running it again.
 */
export type Job = (jobId: string, context: { fencingToken: number | undefined; signal: AbortSignal }) => Promise<string>

export interface HandlerOptions {
  /** An `@upstash/redis` client, created outside the handler so warm invocations reuse it. */
  redis: Redis
  job: Job
}

const JOB_ID = /^[\w.-]{1,128}$/

/**
 * `POST /?job=<id>` runs the job once: 200 `done` (ran now) or `already-done`; 409 `running-elsewhere`;
 * 500 `failed` if the job threw (the lock is released, so a retry runs it again).
 */
export function createHandler({ redis, job }: HandlerOptions): (request: Request) => Promise<Response> {
  const locks = new LockFactory(upstashStore({ connection: redis }))

  return async (request) => {
    if (request.method !== 'POST') return Response.json({ error: 'POST only' }, { status: 405 })
    const jobId = new URL(request.url).searchParams.get('job')
    if (jobId === null || !JOB_ID.test(jobId))
      return Response.json({ error: 'job must match [A-Za-z0-9_.-]{1,128}' }, { status: 400 })
    const doneKey = `jobs:done:${jobId}`

    // The lease outlives the job comfortably; autoExtend keeps it alive if the job runs long.
    const lock = locks.createLock(`jobs:${jobId}`, '30s')
    try {
      const [ran, result] = await lock.runImmediately(
        async ({ fencingToken, signal }) => {
          // Checked under the lock: an invocation that finished just before we acquired has left its mark.
          const previous = await redis.get<string>(doneKey)
          if (previous !== null) return { status: 'already-done' as const, result: previous }
          const output = await job(jobId, { fencingToken, signal })
          await redis.set(doneKey, output, { ex: 24 * 60 * 60 })
          return { status: 'done' as const, result: output, fencingToken }
        },
        { autoExtend: true },
      )
      if (!ran) return Response.json({ status: 'running-elsewhere' }, { status: 409 })
      return Response.json(result)
    } catch (error) {
      return Response.json({ status: 'failed', error: error instanceof Error ? error.message : String(error) }, { status: 500 })
    }
  }
}
