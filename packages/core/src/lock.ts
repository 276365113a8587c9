import { type Duration, toTtl } from './duration.js'
import { describeValue, E_LOCK_NOT_OWNED, E_LOCK_STORAGE_ERROR, toStorageError } from './errors.js'
import { type KeepAlive, type KeepAliveOptions, startKeepAlive } from './keep_alive.js'
import type { Logger } from './logger.js'
import { type SerializedLock, serializeLock } from './serialized_lock.js'
import type { AcquireResult, LockStore } from './store.js'
import {
  handoffPending,
  joinReleaseQueue,
  monotonicNow,
  pauseAfter,
  type ReleaseWaiter,
  type RetryOptions,
  type RetryPolicy,
  resolveRetryPolicy,
  sleep,
} from './waiting.js'

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
 * What the `run` callback receives: `signal` aborts the moment the lock is known lost (an extension was
 * refused, or the lease ran out before one succeeded). Pass it to the work so it can stop.
 */
export interface LockContext {
  signal: AbortSignal
  fencingToken: number | undefined
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
  /** Local estimate of the lease end (epoch ms), when restoring a held lock. */
  expiresAt?: number | null
  fencingToken?: number
}

/**
 * One lock on one key, held by one owner. Create it with `LockFactory.createLock` or `Verrou.createLock`.
 *
 * The store decides who holds the lock; this object only remembers, for the local estimates
 * (`isExpired`, `getRemainingTime`), what it last learnt.
 */
export class Lock {
  readonly key: string
  readonly #store: LockStore
  readonly #owner: string
  readonly #ttl: number | null
  readonly #retry: RetryPolicy
  readonly #logger: Logger
  readonly #operationTimeout: number
  /** `undefined`: not held; `null`: held, never expires; number: estimated lease end, epoch ms. */
  #expiresAt: number | null | undefined
  #fencingToken: number | undefined

  constructor(key: string, init: LockInit) {
    this.key = key
    this.#store = init.store
    this.#owner = init.owner
    this.#ttl = init.ttl
    this.#retry = init.retry
    this.#logger = init.logger
    this.#operationTimeout = init.operationTimeout
    this.#expiresAt = init.expiresAt
    this.#fencingToken = init.fencingToken
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
   * ever, every 250 ms). Returns whether it was acquired. Never sleeps past `retry.timeout`.
   */
  async acquire(options: AcquireOptions = {}): Promise<boolean> {
    const policy = resolveRetryPolicy(options.retry, this.#retry)
    const { signal } = options
    signal?.throwIfAborted()
    const deadline = monotonicNow() + policy.timeout
    let waiter: ReleaseWaiter | undefined
    let subscribed = false
    try {
      if (policy.timeout > 0 && policy.attempts > 1 && handoffPending(this.#store, this.key)) {
        // The lock is being handed to a waiter that was here first: queue behind it rather than barge in.
        subscribed = true
        waiter = await joinReleaseQueue(this.#store, this.key, this.#logger)
        await waiter?.sleep(Math.min(pauseAfter(policy, 1), deadline - monotonicNow()), signal)
      }
      for (let attempt = 1; ; attempt++) {
        const result = await this.#attempt(signal)
        waiter?.attempted()
        if (result.acquired) return true
        if (attempt >= policy.attempts) return false
        const remaining = deadline - monotonicNow()
        if (remaining <= 0) return false
        if (!subscribed) {
          // Subscribe once we know we must wait, then try again at once: the lock may have been released
          // between the attempt and the subscription becoming active.
          subscribed = true
          waiter = await joinReleaseQueue(this.#store, this.key, this.#logger)
          signal?.throwIfAborted()
          if (waiter !== undefined) continue
        }
        let pause = Math.min(pauseAfter(policy, attempt), remaining)
        // Wake when the holder's lease is due to end rather than sleep past it.
        if (result.expiresIn !== undefined) pause = Math.min(pause, Math.max(result.expiresIn, 0) + 1)
        await (waiter ? waiter.sleep(pause, signal) : sleep(pause, signal))
      }
    } finally {
      waiter?.leave()
    }
  }

  /** Exactly one attempt: returns `false` at once if the lock is held. */
  acquireImmediately(): Promise<boolean> {
    return this.#attempt(undefined).then((result) => result.acquired)
  }

  /** Releases the lock. Throws `E_LOCK_NOT_OWNED` unless this owner holds it and its lease has not expired. */
  async release(): Promise<void> {
    const released = await this.#call('release', () => this.#store.release(this.key, this.#owner))
    this.#expiresAt = undefined
    if (!released) throw new E_LOCK_NOT_OWNED(this.key, 'release')
    this.#logger.debug({ key: this.key }, 'verrou: lock released')
  }

  /** Releases the lock whoever holds it. For administration and recovery, not for normal flow. */
  async forceRelease(): Promise<void> {
    await this.#call('force release', () => this.#store.forceRelease(this.key))
    this.#expiresAt = undefined
    this.#logger.debug({ key: this.key }, 'verrou: lock force-released')
  }

  /**
   * Resets the lease to `ttl` (default: the lock's ttl) from now, on the store's clock. Throws
   * `E_LOCK_NOT_OWNED` if this owner does not hold the lock or its lease has already expired.
   */
  async extend(ttl?: Duration | null): Promise<void> {
    const lease = ttl === undefined ? this.#ttl : toTtl(ttl, 'extend ttl')
    const sentAt = Date.now()
    const extended = await this.#call('extend', () => this.#store.extend(this.key, this.#owner, lease))
    if (!extended) {
      this.#expiresAt = undefined
      throw new E_LOCK_NOT_OWNED(this.key, 'extend')
    }
    this.#expiresAt = lease === null ? null : sentAt + lease
  }

  /** Whether anyone holds an unexpired lease on this key (asks the store). */
  isLocked(): Promise<boolean> {
    return this.#call('check', () => this.#store.isLocked(this.key))
  }

  /**
   * Local estimate, no round trip: true unless this lock is held with time left on its lease. Conservative:
   * the lease is counted from before the acquire/extend request was sent. Never true while held with a
   * `null` ttl.
   */
  isExpired(): boolean {
    return this.getRemainingTime() === 0
  }

  /**
   * Local estimate of the milliseconds left on the lease (see `isExpired`): 0 when not held or expired,
   * `null` when held without expiry.
   */
  getRemainingTime(): number | null {
    if (this.#expiresAt === undefined) return 0
    if (this.#expiresAt === null) return null
    return Math.max(0, this.#expiresAt - Date.now())
  }

  /**
   * Acquires (waiting as `options.retry` says), runs `callback`, and always releases. Returns
   * `[true, result]`, or `[false, null]` when the lock could not be acquired. If the callback throws, that
   * error is what you get, even if releasing fails too; if only the release fails (for example the lease
   * ran out during the callback, so exclusion was not guaranteed), that error is thrown.
   */
  async run<T>(callback: (context: LockContext) => T | Promise<T>, options: RunOptions = {}): Promise<RunResult<T>> {
    const acquired = await this.acquire(options)
    if (!acquired) return [false, null]
    return [true, await this.#runHeld(callback, options.autoExtend)]
  }

  /** `run` with a single attempt: `[false, null]` at once if the lock is held. */
  async runImmediately<T>(
    callback: (context: LockContext) => T | Promise<T>,
    options: Pick<RunOptions, 'autoExtend'> = {},
  ): Promise<RunResult<T>> {
    const acquired = await this.acquireImmediately()
    if (!acquired) return [false, null]
    return [true, await this.#runHeld(callback, options.autoExtend)]
  }

  /**
   * Keeps a lock you acquired yourself alive until `stop()`: extends it when half its lease is left and
   * aborts `signal` the moment it is known lost. `run(cb, { autoExtend: true })` does this for you.
   */
  keepAlive(options: KeepAliveOptions = {}): KeepAlive {
    return startKeepAlive(
      {
        extend: () => this.extend(),
        remaining: () => this.getRemainingTime(),
        ttl: this.#ttl,
        logger: this.#logger,
        key: this.key,
      },
      options,
    )
  }

  /** A string another process can turn back into this lock with `LockFactory.restoreLock`. */
  serialize(): string {
    const state: SerializedLock = {
      key: this.key,
      owner: this.#owner,
      ttl: this.#ttl,
      expiresAt: this.#expiresAt ?? null,
      held: this.#expiresAt !== undefined,
      fencingToken: this.#fencingToken ?? null,
    }
    return serializeLock(state)
  }

  /** `await using lock = ...`: releases at the end of the scope if still held. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#expiresAt !== undefined) await this.release()
  }

  async #runHeld<T>(callback: (context: LockContext) => T | Promise<T>, autoExtend: RunOptions['autoExtend']): Promise<T> {
    const keeper = this.keepAlive(
      autoExtend === undefined || autoExtend === false ? { extend: false } : autoExtend === true ? {} : autoExtend,
    )
    let result: T
    try {
      result = await callback({ signal: keeper.signal, fencingToken: this.#fencingToken })
    } catch (error) {
      keeper.stop()
      await this.release().catch((releaseError: unknown) => {
        this.#logger.warn({ key: this.key, err: releaseError }, 'verrou: release after a failed callback failed')
      })
      throw error
    }
    keeper.stop()
    await this.release()
    return result
  }

  /** One acquire round trip, recording the lease estimate and token on success. */
  async #attempt(signal: AbortSignal | undefined): Promise<AcquireResult> {
    const sentAt = Date.now()
    // A result that arrives after we gave up (timeout or abort) must not leave the lock held.
    const releaseLate = (late: AcquireResult) => {
      if (!late.acquired) return
      this.#store.release(this.key, this.#owner).catch((error: unknown) => {
        this.#logger.warn({ key: this.key, err: error }, 'verrou: releasing a lock acquired too late failed')
      })
    }
    const pending = this.#call('acquire', () => this.#store.acquire(this.key, this.#owner, this.#ttl), releaseLate)
    let result: AcquireResult
    if (signal === undefined) {
      result = await pending
    } else {
      result = await abortable(pending, signal, releaseLate)
    }
    if (result.acquired) {
      if (!Number.isSafeInteger(result.fencingToken) || result.fencingToken < 1) {
        throw new E_LOCK_STORAGE_ERROR(
          `Lock store returned an invalid fencing token for "${this.key}": ${describeValue(result.fencingToken)}`,
          {
            key: this.key,
            operation: 'acquire',
          },
        )
      }
      this.#expiresAt = this.#ttl === null ? null : sentAt + this.#ttl
      this.#fencingToken = result.fencingToken
      this.#logger.debug({ key: this.key, fencingToken: result.fencingToken }, 'verrou: lock acquired')
    }
    return result
  }

  /**
   * Runs a store call, turning its failures and hangs into `E_LOCK_STORAGE_ERROR`. On the hot path of every
   * operation, so it is one promise and one timer: no Promise.race, no extra microtask hops.
   */
  #call<T>(operation: string, run: () => Promise<T>, onLate?: (value: T) => void): Promise<T> {
    const timeout = this.#operationTimeout
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      let settled = false
      if (timeout !== Number.POSITIVE_INFINITY) {
        timer = setTimeout(() => {
          settled = true
          reject(
            new E_LOCK_STORAGE_ERROR(`Lock store did not answer ${operation} of "${this.key}" within ${timeout} ms`, {
              key: this.key,
              operation,
            }),
          )
        }, timeout)
      }
      let pending: Promise<T>
      try {
        pending = Promise.resolve(run())
      } catch (error) {
        clearTimeout(timer)
        reject(toStorageError(error, operation, this.key))
        return
      }
      pending.then(
        (value) => {
          if (settled) return onLate?.(value)
          clearTimeout(timer)
          resolve(value)
        },
        (error: unknown) => {
          if (settled) return
          clearTimeout(timer)
          reject(toStorageError(error, operation, this.key))
        },
      )
    })
  }
}

/** Settles with `pending`, or rejects with the signal's reason at once; `onLate` gets a result that came too late. */
function abortable<T>(pending: Promise<T>, signal: AbortSignal, onLate: (value: T) => void): Promise<T> {
  if (signal.aborted) {
    pending.then(onLate, () => {})
    return Promise.reject(signal.reason)
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      pending.then(onLate, () => {})
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    pending.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}
