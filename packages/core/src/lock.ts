import {
  type AcquireOptions,
  type AcquireTarget,
  acquireWithRetry,
  leaveQueue,
  queueWait,
  resolveAcquireOptions,
  willWait,
} from './acquire.js'
import { quoteKey } from './describe_value.js'
import { type Duration, toTtl } from './duration.js'
import { E_LOCK_NOT_OWNED } from './errors.js'
import {
  type KeepAlive,
  type KeepAliveOptions,
  type KeepAlivePolicy,
  type KeepAliveTarget,
  resolveKeepAlivePolicy,
  startKeepAlive,
} from './keep_alive.js'
import { LeaseRecord } from './lease_record.js'
import { type Logger, silentLogger } from './logger.js'
import { handoffPending } from './release_queue.js'
import type { RetryPolicy } from './retry_policy.js'
import { type RunCallback, type RunOptions, type RunResult, type RunTarget, resolveRunOptions, runWhileHeld } from './run.js'
import { serializeLock } from './serialized_lock.js'
import type { LockKind } from './shared_mode_store.js'
import type { AcquireResult, LockStore, WaitOptions } from './store.js'
import { type CallBounds, GAVE_UP, StoreCalls, type StoreContext } from './store_call.js'
import { monotonicNow } from './timer.js'

// `await using` keys on Symbol.asyncDispose, declared by TypeScript's esnext.disposable lib. Declaring it here
// (as @types/node does) keeps these declarations compiling where that lib is absent, such as an edge tsconfig
// of ES2022 + WebWorker; runtimes without the symbol simply never call it.
declare global {
  interface SymbolConstructor {
    readonly asyncDispose: unique symbol
  }
}

/** What every lock of one factory shares, built once by `LockFactory`: creating a lock copies none of it. */
export interface LockShared extends StoreContext {
  readonly retry: RetryPolicy
  /** What the locks made with it are; for every kind but 'lock', `store` speaks to the store's `shared` in one mode. */
  readonly kind: LockKind
  /** A permit's limit; `null` for every other kind. */
  readonly limit: number | null
}

const NO_BOUNDS: CallBounds = Object.freeze({})

/** When restoring a held lock. */
export interface RestoredHolding {
  /** The lease end estimate, epoch ms (`null`: never expires). */
  expiresAt?: number | null
  fencingToken?: number
}

/**
 * One lock on one key, held by one owner. Create it with `LockFactory.createLock` or `Verrou.createLock`.
 *
 * The store decides who holds the lock; this object only remembers, for the local estimates
 * (`isExpired`, `getRemainingTime`), what it last learnt. Locks are not re-entrant: while this Lock holds
 * its lease, `acquire`, `acquireImmediately` and `run` answer "not acquired" at once, without a round trip.
 */
export class Lock {
  readonly key: string
  /**
   * `'lock'` for a mutex (`createLock`), `'permit'` for a semaphore permit (`createSemaphore`), `'read'` or
   * `'write'` for a side of a read-write lock (`createReadWriteLock`). `restoreLock` gives back the same kind.
   */
  readonly kind: LockKind
  /** The semaphore's limit for a permit; `null` for every other kind. */
  readonly limit: number | null
  readonly #owner: string
  readonly #ttl: number | null
  readonly #retry: RetryPolicy
  readonly #logger: Logger
  readonly #calls: StoreCalls
  readonly #store: LockStore
  readonly #lease: LeaseRecord
  #fencingToken: number | undefined

  /** Internal: key and owner must already be validated (`LockFactory` does). */
  constructor(key: string, owner: string, ttl: number | null, shared: LockShared, restored?: RestoredHolding) {
    this.key = key
    this.kind = shared.kind
    this.limit = shared.limit
    this.#store = shared.store
    this.#owner = owner
    this.#ttl = ttl
    this.#retry = shared.retry
    this.#logger = shared.logger
    this.#fencingToken = restored?.fencingToken
    this.#lease = new LeaseRecord(restored?.expiresAt)
    this.#calls = new StoreCalls(shared, key, owner, this.#lease)
  }

  /** The lease given to `acquire` and the default of `extend`, in ms; `null` never expires. */
  get ttl(): number | null {
    return this.#ttl
  }

  /**
   * The fencing token of the last successful acquisition: strictly greater than every token handed out
   * before it for this key. Pass it to the resource you protect and have it reject writes carrying a
   * lower token than one it has seen: that stops a holder that was paused past its lease.
   */
  get fencingToken(): number | undefined {
    return this.#fencingToken
  }

  /** The owner id: random unless given to `createLock`. Share it (or `serialize()`) to hand the lock over. */
  getOwner(): string {
    return this.#owner
  }

  /**
   * Tries to take the lock, waiting while it is held elsewhere, as `options.retry` says (by default: for
   * ever, every 250 ms). Returns whether it was acquired. `retry.timeout` and `signal` bound the whole call.
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    // Not async itself: without options nothing here can throw, and #acquire's promise is returned as is.
    if (options === undefined) return this.#acquire(this.#retry, undefined)
    return this.#acquireWith(options)
  }

  async #acquireWith(options: AcquireOptions): Promise<boolean> {
    const { policy, signal } = resolveAcquireOptions(options, this.#retry)
    return this.#acquire(policy, signal)
  }

  /**
   * Exactly one attempt: returns `false` at once if the lock is held. On a queueing store it also returns
   * `false` while others wait in the queue: it never jumps ahead of them.
   */
  async acquireImmediately(): Promise<boolean> {
    if (this.#lease.holds()) return false
    const result = await this.#attempt(NO_BOUNDS)
    return result !== GAVE_UP && result.acquired
  }

  /** Releases the lock. Throws `E_LOCK_NOT_OWNED` unless this owner holds it and its lease has not expired. */
  async release(): Promise<void> {
    const released = await this.#calls.release()
    this.#lease.end(released ? 'released' : 'lost')
    if (!released) throw this.#notOwned('release')
    // The silent default logger would only discard the record: skip building it on the hot path.
    if (this.#logger !== silentLogger) this.#logger.debug({ key: this.key }, 'verrou: lock released')
  }

  /**
   * Releases the lock whoever holds it. For administration and recovery, not for normal flow. On a permit it
   * frees every permit of the key; on `read`, every reader; on `write`, the writer.
   */
  async forceRelease(): Promise<void> {
    await this.#calls.forceRelease()
    this.#lease.end('released')
    this.#logger.debug({ key: this.key }, 'verrou: lock force-released')
  }

  /**
   * Resets the lease to `ttl` (default: the lock's ttl) from now, on the store's clock. Throws
   * `E_LOCK_NOT_OWNED` if this owner does not hold the lock or its lease has already expired. An answer
   * that arrives after this Lock was released (or acquired again) changes nothing here.
   */
  async extend(ttl?: Duration | null): Promise<void> {
    const lease = ttl === undefined ? this.#ttl : toTtl(ttl, 'extend ttl')
    const sentAt = monotonicNow()
    const version = this.#lease.version
    const extended = await this.#calls.extend(lease)
    if (!extended) {
      this.#lease.refused(version)
      throw this.#notOwned('extend')
    }
    this.#lease.extended(version, sentAt, lease)
  }

  /**
   * Whether anyone holds an unexpired lease on this key (asks the store). On a permit: whether every permit
   * is taken (or a writer holds the key); on `read`: whether a writer holds it; on `write`: whether anyone does.
   */
  isLocked(): Promise<boolean> {
    return this.#calls.isLocked()
  }

  /**
   * Local estimate, no round trip: true unless this lock is held with time left on its lease. Conservative:
   * the lease is counted from before the acquire/extend request was sent, on the monotonic clock. Never true
   * while held with a `null` ttl.
   */
  isExpired(): boolean {
    return this.getRemainingTime() === 0
  }

  /**
   * Local estimate of the milliseconds left on the lease (see `isExpired`): 0 when not held or expired,
   * `null` when held without expiry.
   */
  getRemainingTime(): number | null {
    return this.#lease.remaining()
  }

  /**
   * Acquires (waiting as `options.retry` says), runs `callback`, and always releases. Returns
   * `[true, result]`, or `[false, null]` when the lock could not be acquired. Every option is checked
   * before the store is called. If the callback throws, that error is what you get. If the lock was lost
   * while the callback ran (the signal aborted, or the final release found it gone), `run` rejects with
   * E_LOCK_LOST: the callback's work was done without exclusion.
   */
  async run<T>(callback: RunCallback<T>, options: RunOptions = {}): Promise<RunResult<T>> {
    const { policy, signal } = resolveAcquireOptions(options, this.#retry)
    const keepAlive = resolveRunOptions(callback, options)
    return runWhileHeld(
      this.#runTarget(() => this.#acquire(policy, signal)),
      callback,
      keepAlive,
    )
  }

  /** `run` with a single attempt: `[false, null]` at once if the lock is held. */
  async runImmediately<T>(callback: RunCallback<T>, options: Pick<RunOptions, 'autoExtend'> = {}): Promise<RunResult<T>> {
    const keepAlive = resolveRunOptions(callback, options)
    return runWhileHeld(
      this.#runTarget(() => this.acquireImmediately()),
      callback,
      keepAlive,
    )
  }

  /**
   * Keeps a lock you acquired yourself alive until `stop()`: extends it when `renewAtRemaining` of its lease
   * is left and aborts `signal` with E_LOCK_LOST the moment it is known lost. Throws E_LOCK_NOT_OWNED if
   * this Lock does not hold the lock. `run(cb, { autoExtend: true })` does this for you.
   */
  keepAlive(options: KeepAliveOptions = {}): KeepAlive {
    return this.#keepAlive(resolveKeepAlivePolicy(options))
  }

  /** A string another process can turn back into this lock with `LockFactory.restoreLock`. */
  serialize(): string {
    return serializeLock({
      kind: this.kind,
      limit: this.limit,
      key: this.key,
      owner: this.#owner,
      ttl: this.#ttl,
      expiresAt: this.#lease.expiresAtEpoch(),
      held: this.#lease.recorded,
      fencingToken: this.#fencingToken ?? null,
    })
  }

  /** `await using lock = ...`: releases at the end of the scope if still held. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#lease.recorded) await this.release()
  }

  #notOwned(operation: string): E_LOCK_NOT_OWNED {
    const message = `Cannot ${operation} lock ${quoteKey(this.key)}: it is not held by this owner (never acquired, released, expired or taken over)`
    return new E_LOCK_NOT_OWNED(message, { key: this.key, operation })
  }

  async #acquire(policy: RetryPolicy, signal: AbortSignal | undefined): Promise<boolean> {
    signal?.throwIfAborted()
    if (this.#lease.holds()) return false
    const waits = willWait(policy)
    if (waits && handoffPending(this.#store, this.key)) return acquireWithRetry(this.#acquireTarget(), policy, signal)
    // The first attempt is made here, so that an uncontended acquire builds none of the retry machinery.
    const startedAt = monotonicNow()
    const wait = queueWait(this.#store, policy)
    let result: AcquireResult | typeof GAVE_UP
    try {
      result = await this.#attempt(signal === undefined ? NO_BOUNDS : { signal }, wait, startedAt)
    } catch (error) {
      // Sent with `wait`, a failed attempt may still have left a place in the queue.
      if (wait !== undefined) await leaveQueue(this.#acquireTarget())
      throw error
    }
    if (result !== GAVE_UP && result.acquired) return true
    if (!waits) return false
    return acquireWithRetry(this.#acquireTarget(), policy, signal, { result, startedAt })
  }

  #acquireTarget(): AcquireTarget {
    return {
      store: this.#store,
      key: this.key,
      owner: this.#owner,
      logger: this.#logger,
      attempt: (bounds, wait) => this.#attempt(bounds, wait),
      leaveQueue: () => this.#calls.leaveQueue(),
      holds: () => this.#lease.holds(),
    }
  }

  /** One acquire round trip, recording the lease estimate and token on success. */
  async #attempt(
    bounds: CallBounds,
    wait?: WaitOptions,
    // Taken just before the call; the caller may pass the reading it already made (one clock read fewer).
    sentAt = monotonicNow(),
  ): Promise<AcquireResult | typeof GAVE_UP> {
    const result = await this.#calls.acquire(this.#ttl, bounds, wait)
    if (result !== GAVE_UP && result.acquired) {
      const { handedOver } = result
      if (handedOver === undefined) {
        this.#lease.granted(sentAt, this.#ttl)
      } else {
        // Handed over by a release: only the claim window is sure until the claim lands.
        this.#lease.granted(sentAt, this.#ttl === null ? handedOver.lease : Math.min(this.#ttl, handedOver.lease))
        this.#followClaim(handedOver.claimed, sentAt)
      }
      this.#fencingToken = result.fencingToken
      if (this.#logger !== silentLogger) {
        this.#logger.debug({ key: this.key, fencingToken: result.fencingToken }, 'verrou: lock acquired')
      }
    }
    return result
  }

  /**
   * The claim of a lock handed over, sent within the acquire call that answered at `sentAt`: once it lands
   * the lease is the ttl from then; a claim that found the grant gone ends the holding. Ignored if this Lock
   * released or acquired again meanwhile (the version moved). A failed claim leaves the claim window as the
   * estimate, so the lock reads as expired once that ends.
   */
  #followClaim(claimed: Promise<boolean>, sentAt: number): void {
    const version = this.#lease.version
    claimed.then(
      (landed) => {
        if (landed) this.#lease.extended(version, sentAt, this.#ttl)
        else this.#lease.refused(version)
      },
      (error: unknown) => {
        if (version !== this.#lease.version) return
        this.#logger.warn(
          { key: this.key, err: error },
          'verrou: claiming a lock handed over failed; it is held only until its claim window ends',
        )
      },
    )
  }

  #keepAlive(policy: KeepAlivePolicy): KeepAlive {
    if (!this.#lease.holds()) {
      const message = `Cannot keep lock ${quoteKey(this.key)} alive: it is not held by this owner (never acquired, released or its lease ran out)`
      throw new E_LOCK_NOT_OWNED(message, { key: this.key, operation: 'keep alive' })
    }
    const target: KeepAliveTarget = {
      key: this.key,
      ttl: this.#ttl,
      logger: this.#logger,
      extend: () => this.extend(),
      remaining: () => this.getRemainingTime(),
      status: this.#lease.watch(),
    }
    return startKeepAlive(target, policy)
  }

  #runTarget(acquire: () => Promise<boolean>): RunTarget {
    return {
      key: this.key,
      logger: this.#logger,
      acquire,
      hasHolding: () => this.#lease.recorded,
      keepAlive: (policy) => this.#keepAlive(policy),
      fencingToken: () => this.#fencingToken!,
      release: () => this.release(),
    }
  }
}
