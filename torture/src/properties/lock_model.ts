/**
 * The reference model of lock semantics the memory store is checked against: what any correct store must
 * answer, on a clock the test controls. Deliberately naive: a map and a number, nothing clever to get wrong.
 */
export class LockModel {
  now = 0
  readonly #leases = new Map<string, { owner: string; expiresAt: number | null }>()
  /** Highest token handed out per key: the next one must be above it. */
  readonly lastToken = new Map<string, number>()

  /** The unexpired lease on `key`: one whose end is still ahead (a lease ends at its expiry instant). */
  holder(key: string): { owner: string; expiresAt: number | null } | undefined {
    const lease = this.#leases.get(key)
    if (lease === undefined) return undefined
    if (lease.expiresAt !== null && lease.expiresAt <= this.now) {
      this.#leases.delete(key)
      return undefined
    }
    return lease
  }

  acquire(key: string, owner: string, ttl: number | null): boolean {
    // Not re-entrant: a key held by `owner` itself is refused too.
    if (this.holder(key) !== undefined) return false
    this.#leases.set(key, { owner, expiresAt: ttl === null ? null : this.now + ttl })
    return true
  }

  release(key: string, owner: string): boolean {
    if (this.holder(key)?.owner !== owner) return false
    this.#leases.delete(key)
    return true
  }

  extend(key: string, owner: string, ttl: number | null): boolean {
    const lease = this.holder(key)
    if (lease?.owner !== owner) return false
    lease.expiresAt = ttl === null ? null : this.now + ttl
    return true
  }

  forceRelease(key: string): void {
    this.#leases.delete(key)
  }

  isLocked(key: string): boolean {
    return this.holder(key) !== undefined
  }
}
