/**
 * The release subscribers of a memory store, per key: what `subscribeToReleases` adds to and announcements
 * call. Nothing is kept for a key once its last subscriber left.
 */
export class ReleaseListeners {
  readonly #byKey = new Map<string, Set<(next?: string) => void>>()

  add(key: string, listener: (next?: string) => void): () => void {
    let listeners = this.#byKey.get(key)
    if (!listeners) {
      listeners = new Set()
      this.#byKey.set(key, listeners)
    }
    listeners.add(listener)
    return () => {
      listeners.delete(listener)
      if (listeners.size === 0 && this.#byKey.get(key) === listeners) this.#byKey.delete(key)
    }
  }

  has(key: string): boolean {
    return this.#byKey.has(key)
  }

  /** Names `owner` to every subscriber of `key` (a copy of the set: a listener may unsubscribe). */
  announce(key: string, owner: string): void {
    const listeners = this.#byKey.get(key)
    if (listeners === undefined) return
    for (const listener of [...listeners]) listener(owner)
  }

  keys(): IterableIterator<string> {
    return this.#byKey.keys()
  }
}
