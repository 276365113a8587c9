export interface JobResult {
  slot: string
  sentAt: string
}

/** Stands in for the real scheduled work (send a digest, close the books, rotate a key...). */
export async function sendDailyDigest({ slot, signal }: { slot: string; signal: AbortSignal }): Promise<JobResult> {
  await new Promise((resolve) => setTimeout(resolve, 300))
  // `signal` aborts if the lock is lost: stop before doing anything irreversible.
  signal.throwIfAborted()
  return { slot, sentAt: new Date().toISOString() }
}
