import { describeStore, describeValue, quoteKey } from './describe_value.js'
import { E_LOCK_STORAGE_ERROR, isVerrouError, type VerrouError } from './errors.js'
import type { Logger } from './logger.js'
import type { AcquireResult, LockStore, WaitOptions } from './store.js'
import { type CancelTimer, monotonicNow, startTimer } from './timer.js'

/** What bounds one call besides the operation timeout: an abort signal, a deadline on the monotonic clock. */
export interface CallBounds {
  signal?: AbortSignal
  /** When reached, the call is abandoned and resolves with GAVE_UP. */
  deadline?: number
}

/** An acquire abandoned at its deadline: the caller answers "not acquired"; a late grant is released. */
export const GAVE_UP = Symbol('gave up')

/**
 * What every lock of one factory shares: built once per factory, so that creating a lock copies nothing
 * and describes the store only once.
 */
export interface StoreContext {
  readonly store: LockStore
  readonly logger: Logger
  /** ms; Infinity waits for ever. */
  readonly operationTimeout: number
  /** The store's name in error messages. */
  readonly storeName: string
}

export function storeContext(store: LockStore, logger: Logger, operationTimeout: number): StoreContext {
  return { store, logger, operationTimeout, storeName: describeStore(store) }
}

/** Thrown by a reply check: what is wrong with the reply. */
class InvalidReply {
  constructor(readonly reason: string) {}
}

const RESOLVED = Promise.resolve()

function ignoreReply(): undefined {
  return undefined
}

function checkBoolean(reply: unknown): boolean {
  if (typeof reply !== 'boolean') throw new InvalidReply(`expected true or false, got ${describeValue(reply)}`)
  return reply
}

function checkAcquire(reply: unknown): AcquireResult {
  if (typeof reply !== 'object' || reply === null) throw new InvalidReply(`expected an object, got ${describeValue(reply)}`)
  const { acquired, fencingToken, expiresIn, position } = reply as Record<string, unknown>
  if (acquired === true) {
    if (typeof fencingToken === 'number' && Number.isSafeInteger(fencingToken) && fencingToken >= 1) {
      return { acquired: true, fencingToken }
    }
    throw new InvalidReply(`fencingToken must be a positive safe integer, got ${describeValue(fencingToken)}`)
  }
  if (acquired !== false) throw new InvalidReply(`"acquired" must be true or false, got ${describeValue(acquired)}`)
  const refused: { acquired: false; expiresIn?: number; position?: number } = { acquired: false }
  if (expiresIn !== undefined) {
    if (!(typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn >= 0)) {
      throw new InvalidReply(`expiresIn must be a finite number of ms, 0 or more, or undefined, got ${describeValue(expiresIn)}`)
    }
    refused.expiresIn = expiresIn
  }
  if (position !== undefined) {
    if (!(typeof position === 'number' && Number.isSafeInteger(position) && position >= 0)) {
      throw new InvalidReply(`position must be a safe integer, 0 or more, or undefined, got ${describeValue(position)}`)
    }
    refused.position = position
  }
  return refused
}

/**
 * Every call `Lock` makes to its store goes through here: each is bounded by the operation timeout (and,
 * for acquire, by the caller's signal and deadline), its reply is checked before it is believed, failures
 * become E_LOCK_STORAGE_ERROR naming the store, the operation and the key, and a grant that comes too late
 * or in a malformed reply is released again.
 */
export class StoreCalls {
  readonly #store: LockStore
  readonly #key: string
  readonly #owner: string
  readonly #logger: Logger
  readonly #timeout: number
  readonly #storeName: string

  constructor(context: StoreContext, key: string, owner: string) {
    this.#store = context.store
    this.#key = key
    this.#owner = owner
    this.#logger = context.logger
    this.#timeout = context.operationTimeout
    this.#storeName = context.storeName
  }

  /** `wait`: keep a place in the store's wait queue (queueing stores only; see `LockStore.acquire`). */
  acquire(ttl: number | null, bounds?: CallBounds, wait?: WaitOptions): Promise<AcquireResult | typeof GAVE_UP> {
    const signal = bounds?.signal
    if (signal?.aborted) return Promise.reject(signal.reason)
    let pending: Promise<unknown>
    try {
      pending =
        wait === undefined
          ? this.#store.acquire(this.#key, this.#owner, ttl)
          : this.#store.acquire(this.#key, this.#owner, ttl, wait)
    } catch (error) {
      pending = Promise.reject(error)
    }
    return this.#call('acquire', pending, checkAcquire, bounds, true)
  }

  release(): Promise<boolean> {
    let pending: Promise<unknown>
    try {
      pending = this.#store.release(this.#key, this.#owner)
    } catch (error) {
      pending = Promise.reject(error)
    }
    return this.#call('release', pending, checkBoolean) as Promise<boolean>
  }

  extend(ttl: number | null): Promise<boolean> {
    let pending: Promise<unknown>
    try {
      pending = this.#store.extend(this.#key, this.#owner, ttl)
    } catch (error) {
      pending = Promise.reject(error)
    }
    return this.#call('extend', pending, checkBoolean) as Promise<boolean>
  }

  forceRelease(): Promise<void> {
    let pending: Promise<unknown>
    try {
      pending = this.#store.forceRelease(this.#key)
    } catch (error) {
      pending = Promise.reject(error)
    }
    return this.#call('force release', pending, ignoreReply) as Promise<void>
  }

  /** Gives up this owner's place in the wait queue (queueing stores only). */
  leaveQueue(): Promise<void> {
    let pending: Promise<unknown>
    try {
      pending = this.#store.leaveQueue?.(this.#key, this.#owner) ?? Promise.resolve()
    } catch (error) {
      pending = Promise.reject(error)
    }
    return this.#call('leave queue', pending, ignoreReply) as Promise<void>
  }

  isLocked(): Promise<boolean> {
    let pending: Promise<unknown>
    try {
      pending = this.#store.isLocked(this.#key)
    } catch (error) {
      pending = Promise.reject(error)
    }
    return this.#call('check', pending, checkBoolean) as Promise<boolean>
  }

  /**
   * A reply to an acquire we do not act on (too late, or malformed) may still be a grant: give it back.
   * Release only succeeds for this owner, and a Lock never acquires while it holds, so it frees nothing else.
   */
  #giveBack(reply: unknown): void {
    if (typeof reply === 'object' && reply !== null && (reply as { acquired?: unknown }).acquired === false) return
    let releasing: Promise<unknown>
    try {
      releasing = Promise.resolve(this.#store.release(this.#key, this.#owner))
    } catch (error) {
      releasing = Promise.reject(error)
    }
    releasing.catch((error: unknown) => {
      this.#logger.warn({ key: this.#key, err: error }, 'verrou: giving back a grant we did not use failed')
    })
  }

  /** What a store threw, as a storage error; a Verrou error the driver threw on purpose is kept as it is. */
  #storageError(error: unknown, operation: string): VerrouError {
    if (isVerrouError(error)) return error
    return E_LOCK_STORAGE_ERROR.from(error, { operation, key: this.#key, store: this.#storeName })
  }

  /**
   * One store call, already sent: `pending` is what the store returned. On the hot path of every operation.
   * The operation timeout (and the deadline) are armed one microtask later, and only if the call has not
   * settled by then: a store that answers at once (a reply already resolved) costs no timer at all. The
   * microtask runs before any timer could fire, so the bound is as tight as arming at once; the abort
   * listener is attached at once. `grants`: a reply not acted on is given back (acquire).
   */
  #call<T>(
    operation: string,
    pending: Promise<unknown>,
    check: (reply: unknown) => T,
    bounds?: CallBounds,
    grants = false,
  ): Promise<T | typeof GAVE_UP> {
    const signal = bounds?.signal
    const deadline = bounds?.deadline
    return new Promise<T | typeof GAVE_UP>((resolve, reject) => {
      let settled = false
      let cancelTimeout: CancelTimer | undefined
      let cancelDeadline: CancelTimer | undefined
      const onAbort =
        signal === undefined
          ? undefined
          : () => {
              if (settled) return
              settle()
              reject(signal.reason)
            }
      const settle = () => {
        settled = true
        cancelTimeout?.()
        cancelDeadline?.()
        if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort)
      }
      Promise.resolve(pending).then(
        (reply) => {
          if (settled) {
            if (grants) this.#giveBack(reply)
            return
          }
          settle()
          let checked: T
          try {
            checked = check(reply)
          } catch (error) {
            if (grants) this.#giveBack(reply)
            const reason = error instanceof InvalidReply ? error.reason : describeValue(error)
            const message = `${this.#storeName} gave an invalid reply to ${operation} of lock ${quoteKey(this.#key)}: ${reason}`
            reject(new E_LOCK_STORAGE_ERROR(message, { key: this.#key, operation }))
            return
          }
          resolve(checked)
        },
        (error: unknown) => {
          if (settled) return
          settle()
          reject(this.#storageError(error, operation))
        },
      )
      const timed = this.#timeout !== Number.POSITIVE_INFINITY
      const bounded = deadline !== undefined && deadline !== Number.POSITIVE_INFINITY
      if (timed || bounded) {
        // Queued after the reply's own reaction: when the store answered at once, that has settled the call.
        RESOLVED.then(() => {
          if (settled) return
          if (timed) {
            cancelTimeout = startTimer(this.#timeout, () => {
              if (settled) return
              settle()
              const message = `${this.#storeName} did not answer ${operation} of lock ${quoteKey(this.#key)} within ${this.#timeout} ms`
              reject(new E_LOCK_STORAGE_ERROR(message, { key: this.#key, operation }))
            })
          }
          if (bounded) {
            cancelDeadline = startTimer(deadline - monotonicNow(), () => {
              if (settled) return
              settle()
              resolve(GAVE_UP)
            })
          }
        })
      }
      if (onAbort !== undefined) signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}
