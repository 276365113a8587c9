/**
 * SQLSTATEs meaning "this transaction lost a race and was rolled back whole; run it again":
 * - 40001 serialization_failure: under `default_transaction_isolation` repeatable read or serializable, a
 *   statement that meets a row another transaction changed since its snapshot, or SSI's read/write checks
 *   (which may involve other keys sharing an index page).
 * - 40P01 deadlock_detected: the victim of a deadlock.
 * Each lock statement is its own transaction, so nothing of the failed attempt remains (a sequence value it
 * drew is only a gap in the tokens; a pg_notify of a rolled-back transaction is never delivered).
 */
const RETRYABLE = new Set(['40001', '40P01'])

/**
 * Attempts per statement. Under contention on one key a retry takes a fresh snapshot that already shows
 * the winner, so an acquirer that only reads settles in one or two. Waiters joining a queue all write the
 * same row, so they take turns: 20 sessions joining at once under serializable needed up to 8 attempts in
 * the tests, hence the margin. The bound only stops a pathological storm, which is then reported as a
 * storage error with PostgreSQL's error as its cause.
 */
export const CONFLICT_ATTEMPTS = 20
/** The longest pause between two attempts, in ms: pauses double from 2 ms up to this. */
const MAX_PAUSE_MS = 32

export function isTransientConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && RETRYABLE.has(code)
}

/**
 * Runs `statement` until it completes without a transient conflict, at most {@link CONFLICT_ATTEMPTS}
 * times (about half a second of pauses at most). Between attempts it waits a random few milliseconds,
 * growing with each attempt, so that racers retrying in step spread out instead of colliding again.
 */
export async function retryingConflicts<T>(statement: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement()
    } catch (error) {
      if (attempt >= CONFLICT_ATTEMPTS || !isTransientConflict(error)) throw error
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2 ** attempt, MAX_PAUSE_MS)))
    }
  }
}
