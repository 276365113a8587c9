/** How long a queue seen on a key sends that key's acquires and releases straight to the full statements. */
const QUEUE_HINT_MS = 1_000

/** Bounds what the store remembers; a forgotten key costs at most one light statement that changes nothing. */
const MAX_REMEMBERED_KEYS = 10_000

/**
 * The keys this store saw with a wait queue lately (it took a place in one, or was handed the lock),
 * each with when (monotonic ms). Only a hint: the light acquire and release change nothing on a key with
 * a queue, and the full statements then decide; the hint spares that first statement.
 */
export class RecentQueues {
  readonly #seenAt = new Map<string, number>()

  saw(key: string, at: number): void {
    if (this.#seenAt.size >= MAX_REMEMBERED_KEYS && !this.#seenAt.has(key)) this.#seenAt.clear()
    this.#seenAt.set(key, at)
  }

  /** Whether `key` had a queue less than QUEUE_HINT_MS before `now`. */
  has(key: string, now: number): boolean {
    const seenAt = this.#seenAt.get(key)
    if (seenAt === undefined) return false
    if (now - seenAt < QUEUE_HINT_MS) return true
    this.#seenAt.delete(key)
    return false
  }
}
