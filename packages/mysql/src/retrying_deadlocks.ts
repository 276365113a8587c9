/** InnoDB's deadlock victim: its statement was rolled back whole, so running it again is safe. */
const ER_LOCK_DEADLOCK = 1213
const DEADLOCK_ATTEMPTS = 3

/**
 * Runs one statement, again if InnoDB picked it as a deadlock victim. Pruning and acquires touch the same
 * rows and the floor row in different orders, so under churn a deadlock is an expected event, not a failure.
 */
export async function retryingDeadlocks<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run()
    } catch (error) {
      if (attempt >= DEADLOCK_ATTEMPTS || (error as { errno?: unknown } | null)?.errno !== ER_LOCK_DEADLOCK) throw error
    }
  }
}
