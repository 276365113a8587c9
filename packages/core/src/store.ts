/**
 * The contract between `Lock` and a backend. A driver implements this interface and nothing else;
 * `@verrou/core/test-suite` is its executable specification.
 *
 * Rules every method follows:
 * - The store decides expiry with its own clock (the server's, where the backend has one), in the same
 *   atomic operation that reads or writes the lock. The caller's clock is never trusted for a decision.
 * - An expired lock belongs to nobody: it can be acquired by anyone and can no longer be released or
 *   extended by its former owner.
 * - "Not acquired" / "not owned" are answers (`acquired: false`, `false`). Any failure of the backend
 *   (network, timeout, permissions, malformed reply) is thrown, never turned into one of those answers.
 * - Keys and owners are opaque non-empty strings; `Lock` validates them before they reach a store.
 */
export interface LockStore {
  /**
   * Take the lock if nobody holds it (or its holder's lease has expired). Locks are not re-entrant:
   * a key already held by `owner` is not acquired again.
   *
   * @param ttl lease in milliseconds (a positive integer), or `null` for a lease that never expires.
   */
  acquire(key: string, owner: string, ttl: number | null): Promise<AcquireResult>

  /** Release the lock if `owner` holds it and its lease has not expired. Returns whether it did. */
  release(key: string, owner: string): Promise<boolean>

  /**
   * Reset the lease of a lock `owner` holds to `ttl` from now, on the store's clock (`null`: never expires).
   * Returns `false`, changing nothing, if `owner` does not hold it or the lease has already expired.
   */
  extend(key: string, owner: string, ttl: number | null): Promise<boolean>

  /** Release the lock whoever holds it. Fencing tokens keep increasing afterwards. */
  forceRelease(key: string): Promise<void>

  /** Whether anyone holds an unexpired lease on `key`. */
  isLocked(key: string): Promise<boolean>

  /**
   * Optional: call `listener` when `key` is released or force-released, so that waiters retry at once
   * instead of sleeping out their retry delay. Resolves once the subscription is active, with a function
   * that ends it. Notifications may be lost: waiters still poll, so this only ever makes waiting faster.
   */
  subscribeToReleases?(key: string, listener: () => void): Promise<Unsubscribe>

  /** Optional: free what the store itself opened (never a connection the user passed in). */
  close?(): Promise<void>
}

export type Unsubscribe = () => void | Promise<void>

export type AcquireResult =
  | {
      acquired: true
      /**
       * Strictly greater than every token handed out before for this key by this store, including across
       * release, expiry and force release. A positive safe integer: compare with `<` / `>`.
       */
      fencingToken: number
    }
  | {
      acquired: false
      /**
       * Milliseconds until the current holder's lease expires on the store's clock, when the store learnt it
       * in the same round trip; `undefined` when unknown or when the lease never expires.
       */
      expiresIn?: number
    }
