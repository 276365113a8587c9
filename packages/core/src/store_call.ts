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
  acquire(ttl: number | null, bounds: CallBounds = {}, wait?: WaitOptions): Promise<AcquireResult | typeof GAVE_UP> {
    // A reply we do not act on (too late, or malformed) may still be a grant: give it back. Release only
    // succeeds for this owner, and a Lock never acquires while it holds, so it frees nothing else.
    const giveBack = (reply: unknown) => {
      if (typeof reply === 'object' && reply !== null && (reply as { acquired?: unknown }).acquired === false) return
      this.#store.release(this.#key, this.#owner).catch((error: unknown) => {
        this.#logger.warn({ key: this.#key, err: error }, 'verrou: giving back a grant we did not use failed')
      })
    }
    const send =
      wait === undefined
        ? () => this.#store.acquire(this.#key, this.#owner, ttl)
        : () => this.#store.acquire(this.#key, this.#owner, ttl, wait)
    return this.#call('acquire', send, checkAcquire, bounds, giveBack)
  }

  release(): Promise<boolean> {
    return this.#call('release', () => this.#store.release(this.#key, this.#owner), checkBoolean) as Promise<boolean>
  }

  extend(ttl: number | null): Promise<boolean> {
    return this.#call('extend', () => this.#store.extend(this.#key, this.#owner, ttl), checkBoolean) as Promise<boolean>
  }

  forceRelease(): Promise<void> {
    return this.#call(
      'force release',
      () => this.#store.forceRelease(this.#key),
      () => undefined,
    ) as Promise<void>
  }

  /** Gives up this owner's place in the wait queue (queueing stores only). */
  leaveQueue(): Promise<void> {
    return this.#call(
      'leave queue',
      () => this.#store.leaveQueue?.(this.#key, this.#owner) ?? Promise.resolve(),
      () => undefined,
    ) as Promise<void>
  }

  isLocked(): Promise<boolean> {
    return this.#call('check', () => this.#store.isLocked(this.#key), checkBoolean) as Promise<boolean>
  }

  /** What a store threw, as a storage error; a Verrou error the driver threw on purpose is kept as it is. */
  #storageError(error: unknown, operation: string): VerrouError {
    if (isVerrouError(error)) return error
    return E_LOCK_STORAGE_ERROR.from(error, { operation, key: this.#key, store: this.#storeName })
  }

  /**
   * One store call. On the hot path of every operation, so it is one promise and one timer (plus a listener
   * and a timer only when the caller passed a signal or a deadline): no Promise.race, no extra hops.
   */
  #call<T>(
    operation: string,
    send: () => Promise<unknown>,
    check: (reply: unknown) => T,
    bounds: CallBounds = {},
    giveBack?: (reply: unknown) => void,
  ): Promise<T | typeof GAVE_UP> {
    const { signal, deadline } = bounds
    if (signal?.aborted) return Promise.reject(signal.reason)
    return new Promise<T | typeof GAVE_UP>((resolve, reject) => {
      let settled = false
      let cancelTimeout: CancelTimer | undefined
      let cancelDeadline: CancelTimer | undefined
      const settle = () => {
        settled = true
        cancelTimeout?.()
        cancelDeadline?.()
        signal?.removeEventListener('abort', onAbort)
      }
      const onAbort = () => {
        if (settled) return
        settle()
        reject(signal?.reason)
      }
      if (this.#timeout !== Number.POSITIVE_INFINITY) {
        cancelTimeout = startTimer(this.#timeout, () => {
          if (settled) return
          settle()
          const message = `${this.#storeName} did not answer ${operation} of lock ${quoteKey(this.#key)} within ${this.#timeout} ms`
          reject(new E_LOCK_STORAGE_ERROR(message, { key: this.#key, operation }))
        })
      }
      if (deadline !== undefined && deadline !== Number.POSITIVE_INFINITY) {
        cancelDeadline = startTimer(deadline - monotonicNow(), () => {
          if (settled) return
          settle()
          resolve(GAVE_UP)
        })
      }
      signal?.addEventListener('abort', onAbort, { once: true })

      let pending: Promise<unknown>
      try {
        pending = Promise.resolve(send())
      } catch (error) {
        pending = Promise.reject(error)
      }
      pending.then(
        (reply) => {
          if (settled) return giveBack?.(reply)
          settle()
          try {
            resolve(check(reply))
          } catch (error) {
            giveBack?.(reply)
            const reason = error instanceof InvalidReply ? error.reason : describeValue(error)
            const message = `${this.#storeName} gave an invalid reply to ${operation} of lock ${quoteKey(this.#key)}: ${reason}`
            reject(new E_LOCK_STORAGE_ERROR(message, { key: this.#key, operation }))
          }
        },
        (error: unknown) => {
          if (settled) return
          settle()
          reject(this.#storageError(error, operation))
        },
      )
    })
  }
}
