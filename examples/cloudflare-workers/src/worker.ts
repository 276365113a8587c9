import { Redis } from '@upstash/redis/cloudflare'
import { LockFactory } from '@verrou/core'
import { upstashStore } from '@verrou/upstash'
import { rebuildReport } from './report.js'

/** The bindings this Worker reads: set them with `wrangler secret put` (see the README). */
export interface Env {
  UPSTASH_REDIS_REST_URL: string
  UPSTASH_REDIS_REST_TOKEN: string
  UPSTASH_DISABLE_TELEMETRY?: string
}

const REPORT_ID = /^[\w.-]{1,128}$/

/**
 * `POST /rebuild?report=<id>` rebuilds one report, never two rebuilds of the same report at once, across
 * every isolate and data centre: the lock lives in Upstash Redis. 200 `rebuilt` with the fencing token; 409
 * `busy` if another request is rebuilding it right now (ask again later); 500 `failed` if the rebuild threw.
 */
export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url)
    if (url.pathname !== '/rebuild') return Response.json({ error: 'not found' }, { status: 404 })
    if (request.method !== 'POST') return Response.json({ error: 'POST only' }, { status: 405 })
    const reportId = url.searchParams.get('report')
    if (reportId === null || !REPORT_ID.test(reportId)) {
      return Response.json({ error: 'report must match [A-Za-z0-9_.-]{1,128}' }, { status: 400 })
    }

    // Workers have no process.env: the credentials come from the bindings, per request.
    const redis = Redis.fromEnv(env)
    const locks = new LockFactory(upstashStore({ connection: redis }))
    // The lease covers a slow rebuild; autoExtend keeps it while the rebuild runs longer.
    const lock = locks.createLock(`reports:${reportId}`, '30s')
    try {
      const [ran, result] = await lock.runImmediately(
        ({ fencingToken, signal }) => rebuildReport(redis, reportId, { fencingToken, signal }),
        { autoExtend: true },
      )
      if (!ran) return Response.json({ status: 'busy' }, { status: 409 })
      return Response.json({ status: 'rebuilt', ...result })
    } catch (error) {
      return Response.json({ status: 'failed', error: error instanceof Error ? error.message : String(error) }, { status: 500 })
    }
  },
}
