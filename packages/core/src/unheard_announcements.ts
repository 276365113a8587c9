/** How long an announcement nobody listened to is kept: enough to cover a waiter that is subscribing. */
const KEPT_MS = 5_000
/** Per key: a release, a waiter leaving, a lease ending... a handful at most in a few seconds. */
const MAX_PER_KEY = 8
/** Overall: more means something else is wrong, and dropping them only costs waiters a poll. */
const MAX_KEYS = 1_000

/**
 * For a store whose subscriptions report `heardSince` (see `Unsubscribe`): keeps, for a few seconds, the
 * announcements the store received for a key while it had no listener, and hands them, once, to the
 * next listener of that key. Keys are the store's own (a channel, a payload), so any string.
 */
export class UnheardAnnouncements {
  readonly #kept = new Map<string, { next: string | undefined; at: number }[]>()

  /** Keeps an announcement (`next`: the owner it names, if any) that no listener heard. */
  keep(key: string, next: string | undefined, now = performance.now()): void {
    let list = this.#kept.get(key)
    if (list === undefined) {
      if (this.#kept.size >= MAX_KEYS) this.#dropStale(now)
      if (this.#kept.size >= MAX_KEYS) this.#kept.clear()
      list = []
      this.#kept.set(key, list)
    }
    if (list.length >= MAX_PER_KEY) list.shift()
    list.push({ next, at: now })
  }

  /** Removes and returns what was kept for `key` in the last few seconds, oldest first. */
  take(key: string, now = performance.now()): (string | undefined)[] {
    const list = this.#kept.get(key)
    if (list === undefined) return []
    this.#kept.delete(key)
    return list.filter(({ at }) => now - at < KEPT_MS).map(({ next }) => next)
  }

  clear(): void {
    this.#kept.clear()
  }

  #dropStale(now: number): void {
    for (const [key, list] of this.#kept) {
      if (list.every(({ at }) => now - at >= KEPT_MS)) this.#kept.delete(key)
    }
  }
}
