/** How many (key, owner) pairs a store remembers; the oldest is forgotten beyond it. */
const MAX_PAIR_HINTS = 10_000

/**
 * What a store last saw of a (key, owner) pair keeping a place in a queue, so that the pair's next attempt
 * can start with the one-request renewal. Only a hint: a wrong one costs a failed condition, then the full
 * decision. Bounded, as a waiter that vanished without leaving is never seen again.
 */
export class PairHints<Hint> {
  readonly #pairs = new Map<string, Hint>()

  get(key: string, owner: string): Hint | undefined {
    return this.#pairs.get(pairId(key, owner))
  }

  set(key: string, owner: string, hint: Hint): void {
    const id = pairId(key, owner)
    if (!this.#pairs.has(id) && this.#pairs.size >= MAX_PAIR_HINTS) {
      const oldest = this.#pairs.keys().next()
      if (!oldest.done) this.#pairs.delete(oldest.value)
    }
    this.#pairs.set(id, hint)
  }

  delete(key: string, owner: string): void {
    this.#pairs.delete(pairId(key, owner))
  }
}

/** One string per (key, owner), unambiguous whatever either contains. */
function pairId(key: string, owner: string): string {
  return `${key.length}:${key}${owner}`
}
