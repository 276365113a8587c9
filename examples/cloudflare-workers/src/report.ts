import type { Redis } from '@upstash/redis/cloudflare'

export interface RebuildResult {
  reportId: string
  fencingToken: number | undefined
  /** How many times this report has been rebuilt, this time included. */
  rebuilds: number
}

/**
 * Stands in for work that must not run twice at once (rebuilding a cached report from its sources). It
 * writes the report with the fencing token, so storage can refuse a writer whose lock had already passed
 * to someone else. It also counts rebuilds and rebuilds in progress, which is how the tests see that the
 * lock kept it to one at a time.
 */
export async function rebuildReport(
  redis: Redis,
  reportId: string,
  { fencingToken, signal }: { fencingToken: number | undefined; signal: AbortSignal },
): Promise<RebuildResult> {
  const active = `reports:${reportId}:active`
  const inProgress = await redis.incr(active)
  try {
    if (inProgress > 1) await redis.incr(`reports:${reportId}:overlaps`)
    // The rebuild itself: a slow read of the sources.
    await new Promise((resolve) => setTimeout(resolve, 250))
    signal.throwIfAborted()
    const rebuilds = await redis.incr(`reports:${reportId}:rebuilds`)
    await redis.set(`reports:${reportId}`, { rebuiltAt: new Date().toISOString(), fencingToken })
    return { reportId, fencingToken, rebuilds }
  } finally {
    await redis.decr(active)
  }
}
