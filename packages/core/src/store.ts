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
   * A queueing store (one with `leaveQueue`) also keeps a FIFO queue of waiters per key, in the same atomic
   * operation:
   * - It grants only if the lock is free AND no live waiter stands ahead of `owner` (the queue has no live
   *   place, or `owner` holds the first one), with or without `wait`: nobody jumps a non-empty queue.
   * - Refused with `wait`: `owner` is appended at the tail unless it has a place already, and its place's
   *   lease becomes now + `wait.lease` on the store's clock; the reply says its `position`. Refused without
   *   `wait`: the queue is left as it is.
   * - Granted: `owner`'s place, if any, is removed.
   * - A place whose lease ended is dead: skipped and dropped by whatever reads the queue, so a waiter that
   *   dies delays the next by at most its remaining place lease. A queue with no live place disappears
   *   within a bounded grace.
   * Stores without a queue ignore `wait`.
   *
   * @param ttl lease in milliseconds (a positive integer), or `null` for a lease that never expires.
   * @param wait given when the caller will keep waiting: join (or keep) a place in the queue of `key`.
   */
  acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult>

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
   * Optional; a store that has it is a queueing store (see `acquire`). Removes `owner`'s place from the
   * queue of `key`, whether or not it had one (idempotent). If `owner` was the first live waiter and the
   * lock is free, the next live waiter is announced to the key's subscribers, as a release would.
   */
  leaveQueue?(key: string, owner: string): Promise<void>

  /**
   * Optional: call `listener` when `key` is released or force-released, so that waiters retry at once
   * instead of sleeping out their retry delay. Resolves once the subscription is active, with a function
   * that ends it. Notifications may be lost: waiters still poll, so this only ever makes waiting faster.
   *
   * `next` names the owner that should try now, when the store knows it: a queueing store announces a
   * release only when a live waiter exists, with the owner id of the first one, and announces nothing when
   * nobody waits. A store without a queue calls `listener()` with no name on every release.
   */
  subscribeToReleases?(key: string, listener: (next?: string) => void): Promise<Unsubscribe>

  /** Optional: free what the store itself opened (never a connection the user passed in). */
  close?(): Promise<void>
}

/** Given to `acquire` by a caller that will keep waiting, so that a queueing store keeps its place. */
export interface WaitOptions {
  /**
   * How long, in ms on the store's clock, the caller's place in the queue is kept without renewal (a
   * positive integer). The caller re-attempts well within it while it waits; a place not renewed in time is
   * dead and no longer holds up anyone.
   */
  lease: number
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
      /**
       * Queueing stores, when `wait` was given: the caller's 0-based place among the live waiters
       * (0 = next in line). A non-negative safe integer, or `undefined`.
       */
      position?: number
    }
