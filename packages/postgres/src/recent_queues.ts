/** How long a queue seen on a key sends that key's acquires and releases straight to the full statements. */
const QUEUE_HINT_MS = 1_000

/** Bounds what the store remembers; a forgotten key costs at most one light statement that changes nothing. */
const MAX_REMEMBERED_KEYS = 10_000

/**
 * The keys this store saw with a wait queue lately (it took a place in one, or was handed the lock),
 * each with until when (monotonic ms) the hint holds. Only a hint: the light acquire and release change
 * nothing on a key with a queue, and the full statements then decide; the hint spares that first statement.
 */
export class RecentQueues {
  readonly #until = new Map<string, number>()

  /**
   * Notes a queue on `key` at `at`: the hint holds QUEUE_HINT_MS, or `lasts` ms if longer (a place's lease:
   * the waiter's renewals come within it, so none of them sends the light statement first).
   */
  saw(key: string, at: number, lasts = QUEUE_HINT_MS): void {
    if (this.#until.size >= MAX_REMEMBERED_KEYS && !this.#until.has(key)) this.#until.clear()
    this.#until.set(key, at + Math.max(lasts, QUEUE_HINT_MS))
  }

  /** Whether the hint on `key` still holds at `now`. */
  has(key: string, now: number): boolean {
    const until = this.#until.get(key)
    if (until === undefined) return false
    if (now < until) return true
    this.#until.delete(key)
    return false
  }
}
