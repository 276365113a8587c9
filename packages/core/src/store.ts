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
   * - A lock a release handed to `owner` (see `release`) and not claimed yet is granted: this acquire
   *   claims it for `ttl`, with the token of the hand-over. A store that heard of the hand-over may answer
   *   without a round trip instead, with `handedOver` (see {@link HandOver}).
   * Stores without a queue ignore `wait`.
   *
   * @param ttl lease in milliseconds (a positive integer), or `null` for a lease that never expires.
   * @param wait given when the caller will keep waiting: join (or keep) a place in the queue of `key`.
   */
  acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult>

  /**
   * Release the lock if `owner` holds it and its lease has not expired. Returns whether it did.
   *
   * A queueing store may hand the lock straight to the first live waiter instead of freeing it (the
   * heir): the heir then holds it, with a new token, for a claim window that ends no later than its place
   * lease, until its next acquire (or the store's claim) takes it for its ttl. An heir that never claims
   * holds up the next waiter no longer than its dead place would have.
   */
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
   * queue of `key`, whether or not it had one (idempotent). A lock handed to `owner` and not claimed yet
   * is released with it. If `owner` was the first live waiter and the lock is free, the next live waiter is
   * announced to the key's subscribers, as a release would.
   */
  leaveQueue?(key: string, owner: string): Promise<void>

  /**
   * Optional: call `listener` when `key` is released or force-released, so that waiters retry at once
   * instead of sleeping out their retry delay. Resolves once the subscription is active, with a function
   * that ends it. Notifications may be lost: waiters still poll, so this only ever makes waiting faster.
   *
   * `next` names the owner that should try now, when the store knows it: a queueing store announces a
   * release only when a live waiter exists, with the owner id of the first one, and announces nothing when
   * nobody waits. It must tell the listeners of the store that queued that waiter (its process); it may
   * leave the other stores' listeners out, so that a release wakes one process rather than every process
   * waiting on the key. A store without a queue calls `listener()` with no name on every release.
   */
  subscribeToReleases?(key: string, listener: (next?: string) => void): Promise<Unsubscribe>

  /** Optional: free what the store itself opened (never a connection the user passed in). */
  close?(): Promise<void>

  /**
   * Optional: semaphores and read-write locks on this store (see `SharedLockStore`). Their keys live apart
   * from the mutex keys of `acquire`: a mutex and a semaphore with the same key do not exclude each other.
   */
  readonly shared?: SharedLockStore
}

/**
 * What a shared-lock request asks for. A holder is either exclusive (a writer: alone on the key) or shared
 * (a reader, or a semaphore permit). A semaphore and a read-write lock on one key are one shared lock: a
 * permit counts as a reader.
 */
export interface SharedMode {
  /** `true`: a writer, granted only when nobody else holds the key. `false`: a reader or a permit. */
  readonly exclusive: boolean
  /**
   * Shared requests only (ignored when exclusive): granted only while fewer than `limit` shared holders hold
   * the key, counting the live shared waiters queued ahead of the caller (a positive safe integer). `null`:
   * no limit (a reader). Each request brings its own limit; the store keeps none.
   */
  readonly limit: number | null
}

/**
 * The contract of semaphores and read-write locks: many holders per key, each with its own lease on the
 * store's clock, and one FIFO wait queue per key. The `LockStore` rules hold here too (store's clock, answers
 * vs thrown failures, one atomic operation per call where the backend allows it). Per key:
 * - Holders: owner -> (exclusive or shared, lease end). An expired holder is gone for every decision.
 * - Queue: FIFO places, each with its owner, its `SharedMode` and its own lease, exactly as the mutex queue
 *   (join/keep on a refused attempt with `wait`, removed on grant, dead places skipped and dropped).
 * - A fencing counter: every grant, shared or exclusive, gets a token strictly greater than every token given
 *   before for this key by this store (across release, expiry, force release and the key sitting idle).
 *
 * Grant rule for `owner` asking with `mode` (with or without `wait`): refused if `owner` holds the key
 * already (in any mode; not re-entrant). Let "ahead" be the live places before `owner`'s place, or all live
 * places when it has none. Exclusive: granted iff there are no live holders and nobody ahead. Shared:
 * granted iff no live exclusive holder, no exclusive place ahead, and, when `limit` is not null, live shared
 * holders + shared places ahead < `limit`. So once a writer waits, readers that come later wait behind it.
 *
 * Announcements (when the store has `subscribeToReleases`): whenever holders end (release, force release,
 * lease end) or a place leaves or dies, the store walks the live places in order and names, one listener call
 * each, every waiter the grant rule would now admit (counting those named before it as holders), stopping at
 * the first it would not. Nothing is announced when nobody waits.
 */
export interface SharedLockStore {
  /** Take a holding of `key` in `mode` under the grant rule above. Refusals report `position` as `acquire` does. */
  acquire(key: string, owner: string, mode: SharedMode, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult>

  /**
   * Ends `owner`'s holding if it holds `key` with the same exclusivity as `mode` and its lease has not
   * expired. Returns whether it did.
   */
  release(key: string, owner: string, mode: SharedMode): Promise<boolean>

  /** Resets `owner`'s lease as `LockStore.extend` does, if it holds `key` with the exclusivity of `mode`. */
  extend(key: string, owner: string, mode: SharedMode, ttl: number | null): Promise<boolean>

  /** Exclusive mode: ends the writer's holding. Shared mode: ends every shared holding. Tokens keep rising. */
  forceRelease(key: string, mode: SharedMode): Promise<void>

  /**
   * Exclusive mode: whether anyone holds `key`. Shared mode: whether a writer holds it, or (with a `limit`)
   * whether at least `limit` shared holders do. Waiters do not count.
   */
  isLocked(key: string, mode: SharedMode): Promise<boolean>

  /** Removes `owner`'s place from the queue of `key` (idempotent), announcing those it held up. */
  leaveQueue(key: string, owner: string): Promise<void>

  /** As `LockStore.subscribeToReleases`, for shared keys: `listener(owner)` once per waiter announced. */
  subscribeToReleases?(key: string, listener: (next?: string) => void): Promise<Unsubscribe>
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

/**
 * Ends a subscription. A store may also say, as `heardSince`, how far back the subscription reaches: a
 * `performance.now()` time of this process since which every announcement the store received for the key
 * is passed to the listener, those received before it subscribed included (the store keeps them a few
 * seconds and replays them to a new listener at once, before `subscribeToReleases` resolves). A waiter whose
 * attempt was sent after that time then needs no extra attempt to cover a release announced while it was
 * subscribing. Without it, the subscription reaches back to the moment it resolved.
 */
export type Unsubscribe = (() => void | Promise<void>) & { readonly heardSince?: number }

/**
 * A grant a release handed straight to a waiter, which the waiter's store heard (an announcement naming it
 * and its token) and reports from `acquire` without a round trip, while it claims the lock for the
 * requested ttl in the background. Until then the store holds the lock for `owner` only for a short claim
 * window, so `Lock` counts on `lease` alone until `claimed` resolves `true`.
 */
export interface HandOver {
  /**
   * Milliseconds, from the moment `acquire` was called, that the lock is surely `owner`'s even if the
   * claim never lands: a lower bound of the claim window left (a non-negative finite number).
   */
  lease: number
  /**
   * Settles once the claim has run: `true` when the lease is now the requested ttl from the claim, on the
   * store's clock; `false` when the grant was gone by then (force released, or its claim window ended);
   * rejected when the store failed. A store may wait to claim (well within the window), so that a holder
   * that releases sooner never sends the claim: it then settles `false` after that release has answered.
   */
  claimed: Promise<boolean>
}

export type AcquireResult =
  | {
      acquired: true
      /**
       * Strictly greater than every token handed out before for this key by this store, including across
       * release, expiry and force release. A positive safe integer: compare with `<` / `>`.
       */
      fencingToken: number
      /**
       * Set only by a store that answers for a grant a release handed to `owner` (see {@link HandOver}):
       * the lease is then provisional until `claimed` settles.
       */
      handedOver?: HandOver
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
