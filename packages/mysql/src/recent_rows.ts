import { ROW_HINT_MS } from './sql.js'

/** Bounds what the store remembers; forgetting a key costs only a floor read on its next acquire. */
const MAX_REMEMBERED_ROWS = 10_000

/**
 * The keys whose row this store saw lately, each with when (monotonic ms) the operation that saw it was
 * sent. Pruning keeps an ended row `ROW_KEPT_MS` on the server's clock, so a row seen less than
 * `ROW_HINT_MS` ago is still there. Only a hint: if the server's clock jumped and the row went, the
 * UPDATE finds nothing and the INSERT decides, one statement later.
 */
export class RecentRows {
  readonly #seenAt = new Map<string, number>()

  saw(key: string, sentAt: number): void {
    if (this.#seenAt.size >= MAX_REMEMBERED_ROWS && !this.#seenAt.has(key)) this.#seenAt.clear()
    this.#seenAt.set(key, sentAt)
  }

  forget(key: string): void {
    this.#seenAt.delete(key)
  }

  /** Whether the row of `key` was seen less than `ROW_HINT_MS` before `now`. */
  has(key: string, now: number): boolean {
    const seenAt = this.#seenAt.get(key)
    return seenAt !== undefined && now - seenAt < ROW_HINT_MS
  }
}
