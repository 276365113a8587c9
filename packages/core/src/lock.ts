import { acquireWithRetry } from './acquire.js'
import { describeValue, quoteKey } from './describe_value.js'
import { type Duration, toTtl } from './duration.js'
import { E_INVALID_ARGUMENT, E_LOCK_LOST, E_LOCK_NOT_OWNED, isVerrouError } from './errors.js'
import {
  type KeepAlive,
  type KeepAliveOptions,
  type KeepAlivePolicy,
  type KeepAliveTarget,
  resolveKeepAlivePolicy,
  startKeepAlive,
} from './keep_alive.js'
import type { Logger } from './logger.js'
import { type RetryOptions, type RetryPolicy, resolveRetryPolicy } from './retry_policy.js'
import { serializeLock } from './serialized_lock.js'
import type { AcquireResult, LockStore } from './store.js'
import { type CallBounds, GAVE_UP, StoreCalls } from './store_call.js'
import { monotonicNow } from './timer.js'

export interface AcquireOptions {
  retry?: RetryOptions
  /** Stops waiting at once: `acquire` rejects with the signal's reason and leaves nothing held. */
  signal?: AbortSignal
}

export interface RunOptions extends AcquireOptions {
  /**
   * Keep extending the lock while the callback runs (default `false`). `true` extends by the lock's ttl
   * when half of it is left; pass options to tune it.
   */
  autoExtend?: boolean | KeepAliveOptions
}

/**
 * What the `run` callback receives: `signal` aborts with E_LOCK_LOST the moment the lock is known lost (an
 * extension was refused, or the lease ran out before one succeeded); pass it to the work so it can stop.
 * `fencingToken` is the token of this acquisition: send it with every write to the resource you protect.
 */
export interface LockContext {
  signal: AbortSignal
  fencingToken: number
}

export type RunResult<T> = [executed: true, result: T] | [executed: false, result: null]

/** Everything a Lock needs besides its key; created by `LockFactory`. */
export interface LockInit {
  store: LockStore
  owner: string
  ttl: number | null
  retry: RetryPolicy
  logger: Logger
  operationTimeout: number
  /** When restoring a held lock: the lease end estimate, epoch ms (`null`: never expires). */
  expiresAt?: number | null
  fencingToken?: number
}

/** One acquisition as this Lock knows it. `ended` says how it stopped being this Lock's. */
interface Holding {
  /** Local lease end on the monotonic clock; `null` never expires. */
  leaseEnd: number | null
  ended?: 'released' | 'lost'
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
  readonly #owner: string
  readonly #ttl: number | null
  readonly #retry: RetryPolicy
  readonly #logger: Logger
  readonly #calls: StoreCalls
  readonly #store: LockStore
  #holding: Holding | undefined
  /** Bumped on every change of #holding: a reply sent before a change must not undo it. */
  #changes = 0
  #fencingToken: number | undefined

  constructor(key: string, init: LockInit) {
    this.key = key
    this.#store = init.store
    this.#owner = init.owner
    this.#ttl = init.ttl
    this.#retry = init.retry
    this.#logger = init.logger
    this.#calls = new StoreCalls({ ...init, key })
    this.#fencingToken = init.fencingToken
    if (init.expiresAt !== undefined) {
      // Serialized locks carry the wall clock (the only one two processes share); from here on, monotonic.
      const leaseEnd = init.expiresAt === null ? null : monotonicNow() + (init.expiresAt - Date.now())
      this.#holding = { leaseEnd }
    }
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
  async acquire(options: AcquireOptions = {}): Promise<boolean> {
    const { policy, signal } = this.#acquireOptions(options)
    return this.#acquire(policy, signal)
  }

  /** Exactly one attempt: returns `false` at once if the lock is held. */
  async acquireImmediately(): Promise<boolean> {
    if (this.#holds()) return false
    const result = await this.#attempt({})
    return result !== GAVE_UP && result.acquired
  }

  /** Releases the lock. Throws `E_LOCK_NOT_OWNED` unless this owner holds it and its lease has not expired. */
  async release(): Promise<void> {
    const released = await this.#calls.release()
    this.#end(released ? 'released' : 'lost')
    if (!released) throw this.#notOwned('release')
    this.#logger.debug({ key: this.key }, 'verrou: lock released')
  }

  /** Releases the lock whoever holds it. For administration and recovery, not for normal flow. */
  async forceRelease(): Promise<void> {
    await this.#calls.forceRelease()
    this.#end('released')
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
    const holding = this.#holding
    const changes = this.#changes
    const extended = await this.#calls.extend(lease)
    const unchanged = this.#changes === changes
    if (!extended) {
      if (unchanged) this.#end('lost')
      throw this.#notOwned('extend')
    }
    if (!unchanged) return
    const leaseEnd = lease === null ? null : sentAt + lease
    if (holding !== undefined) {
      holding.leaseEnd = leaseEnd
    } else {
      // Another Lock of the same owner acquired it: the store says this owner holds it, so this Lock does.
      this.#holding = { leaseEnd }
      this.#changes++
    }
  }

  /** Whether anyone holds an unexpired lease on this key (asks the store). */
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
    const holding = this.#holding
    if (holding === undefined) return 0
    if (holding.leaseEnd === null) return null
    return Math.max(0, Math.floor(holding.leaseEnd - monotonicNow()))
  }

  /**
   * Acquires (waiting as `options.retry` says), runs `callback`, and always releases. Returns
   * `[true, result]`, or `[false, null]` when the lock could not be acquired. Every option is checked
   * before the store is called. If the callback throws, that error is what you get. If the lock was lost
   * while the callback ran (the signal aborted, or the final release found it gone), `run` rejects with
   * E_LOCK_LOST: the callback's work was done without exclusion.
   */
  async run<T>(callback: (context: LockContext) => T | Promise<T>, options: RunOptions = {}): Promise<RunResult<T>> {
    const { policy, signal } = this.#acquireOptions(options)
    const keepAlive = this.#runOptions(callback, options)
    return this.#run(callback, keepAlive, () => this.#acquire(policy, signal))
  }

  /** `run` with a single attempt: `[false, null]` at once if the lock is held. */
  async runImmediately<T>(
    callback: (context: LockContext) => T | Promise<T>,
    options: Pick<RunOptions, 'autoExtend'> = {},
  ): Promise<RunResult<T>> {
    const keepAlive = this.#runOptions(callback, options)
    return this.#run(callback, keepAlive, () => this.acquireImmediately())
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
    const remaining = this.getRemainingTime()
    return serializeLock({
      key: this.key,
      owner: this.#owner,
      ttl: this.#ttl,
      expiresAt: this.#holding === undefined || remaining === null ? null : Date.now() + remaining,
      held: this.#holding !== undefined,
      fencingToken: this.#fencingToken ?? null,
    })
  }

  /** `await using lock = ...`: releases at the end of the scope if still held. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#holding !== undefined) await this.release()
  }

  #holds(): boolean {
    return this.getRemainingTime() !== 0
  }

  #end(how: 'released' | 'lost'): void {
    if (this.#holding !== undefined) this.#holding.ended = how
    this.#holding = undefined
    this.#changes++
  }

  #notOwned(operation: string): E_LOCK_NOT_OWNED {
    const message = `Cannot ${operation} lock ${quoteKey(this.key)}: it is not held by this owner (never acquired, released, expired or taken over)`
    return new E_LOCK_NOT_OWNED(message, { key: this.key, operation })
  }

  #acquireOptions(options: AcquireOptions): { policy: RetryPolicy; signal: AbortSignal | undefined } {
    if (options === null || typeof options !== 'object') {
      throw new E_INVALID_ARGUMENT(`options must be an object, got ${describeValue(options)}`)
    }
    const { signal } = options
    if (signal !== undefined && !(typeof signal === 'object' && signal !== null && typeof signal.aborted === 'boolean')) {
      throw new E_INVALID_ARGUMENT(`signal must be an AbortSignal, got ${describeValue(signal)}`)
    }
    return { policy: resolveRetryPolicy(options.retry, this.#retry), signal }
  }

  /** Checks what `run` takes besides the retry options; returns the keep-alive policy. */
  #runOptions(callback: unknown, options: Pick<RunOptions, 'autoExtend'>): KeepAlivePolicy {
    if (typeof callback !== 'function') throw new E_INVALID_ARGUMENT(`run needs a callback, got ${describeValue(callback)}`)
    if (options === null || typeof options !== 'object') {
      throw new E_INVALID_ARGUMENT(`options must be an object, got ${describeValue(options)}`)
    }
    const { autoExtend = false } = options
    if (typeof autoExtend === 'boolean') return resolveKeepAlivePolicy({ extend: autoExtend })
    return resolveKeepAlivePolicy(autoExtend, 'autoExtend')
  }

  async #acquire(policy: RetryPolicy, signal: AbortSignal | undefined): Promise<boolean> {
    signal?.throwIfAborted()
    if (this.#holds()) return false
    return acquireWithRetry(
      {
        store: this.#store,
        key: this.key,
        logger: this.#logger,
        attempt: (bounds) => this.#attempt(bounds),
        holds: () => this.#holds(),
      },
      policy,
      signal,
    )
  }

  /** One acquire round trip, recording the lease estimate and token on success. */
  async #attempt(bounds: CallBounds): Promise<AcquireResult | typeof GAVE_UP> {
    const sentAt = monotonicNow()
    const result = await this.#calls.acquire(this.#ttl, bounds)
    if (result !== GAVE_UP && result.acquired) {
      this.#end('lost')
      this.#holding = { leaseEnd: this.#ttl === null ? null : sentAt + this.#ttl }
      this.#fencingToken = result.fencingToken
      this.#logger.debug({ key: this.key, fencingToken: result.fencingToken }, 'verrou: lock acquired')
    }
    return result
  }

  #keepAlive(policy: KeepAlivePolicy): KeepAlive {
    const holding = this.#holding
    if (holding === undefined || !this.#holds()) {
      const message = `Cannot keep lock ${quoteKey(this.key)} alive: it is not held by this owner (never acquired, released or its lease ran out)`
      throw new E_LOCK_NOT_OWNED(message, { key: this.key, operation: 'keep alive' })
    }
    const target: KeepAliveTarget = {
      key: this.key,
      ttl: this.#ttl,
      logger: this.#logger,
      extend: () => this.extend(),
      remaining: () => this.getRemainingTime(),
      status: () => (this.#holding === holding ? 'held' : holding.ended === 'released' ? 'released' : 'lost'),
    }
    return startKeepAlive(target, policy)
  }

  /** Acquires with `acquire`, then runs the callback while held; any failure after a grant releases it. */
  async #run<T>(
    callback: (context: LockContext) => T | Promise<T>,
    keepAlivePolicy: KeepAlivePolicy,
    acquire: () => Promise<boolean>,
  ): Promise<RunResult<T>> {
    const changes = this.#changes
    let keeper: KeepAlive | undefined
    let result: T
    try {
      if (!(await acquire())) return [false, null]
      keeper = this.#keepAlive(keepAlivePolicy)
      result = await callback({ signal: keeper.signal, fencingToken: this.#fencingToken! })
    } catch (error) {
      void keeper?.stop()
      if (this.#changes !== changes && this.#holding !== undefined) {
        await this.release().catch((releaseError: unknown) => {
          this.#logger.warn({ key: this.key, err: releaseError }, 'verrou: release after a failed run failed')
        })
      }
      throw error
    }
    void keeper.stop()
    if (keeper.signal.aborted) {
      // Lost while the callback ran. If only our estimate ran out, the store may still hold it: free it.
      if (this.#holding !== undefined) await this.release().catch(() => {})
      throw keeper.signal.reason
    }
    try {
      await this.release()
    } catch (error) {
      if (!isVerrouError(error, 'E_LOCK_NOT_OWNED')) throw error
      const message = `Lock ${quoteKey(this.key)} was lost while run's callback ran: the final release found it expired or taken over`
      throw new E_LOCK_LOST(message, { key: this.key, operation: 'run', cause: error })
    }
    return [true, result]
  }
}
