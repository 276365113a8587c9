import { describeStore, describeValue, quoteKey } from './describe_value.js'
import { E_LOCK_STORAGE_ERROR, isVerrouError, type VerrouError } from './errors.js'
import type { Logger } from './logger.js'
import type { AcquireResult, HandOver, LockStore, WaitOptions } from './store.js'
import { TimeoutWatch } from './timeout_watch.js'
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
  /** Times every call out after `operationTimeout`, on one timer. */
  readonly timeouts: TimeoutWatch
}

export function storeContext(store: LockStore, logger: Logger, operationTimeout: number): StoreContext {
  return { store, logger, operationTimeout, storeName: describeStore(store), timeouts: new TimeoutWatch(operationTimeout) }
}

/** Whether a `Lock` holds its lock as far as it knows. */
export interface Holder {
  holds(): boolean
}

/**
 * Whether a failed call may have reached the store and changed it: anything but a Verrou error the driver
 * threw on purpose before writing (an invalid argument, say). A storage error may come after the write.
 */
function mayHaveLanded(error: unknown): boolean {
  return !isVerrouError(error) || error instanceof E_LOCK_STORAGE_ERROR
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
  const { acquired, fencingToken, expiresIn, position, handedOver } = reply as Record<string, unknown>
  if (acquired === true) {
    if (!(typeof fencingToken === 'number' && Number.isSafeInteger(fencingToken) && fencingToken >= 1)) {
      throw new InvalidReply(`fencingToken must be a positive safe integer, got ${describeValue(fencingToken)}`)
    }
    if (handedOver === undefined) return { acquired: true, fencingToken }
    return { acquired: true, fencingToken, handedOver: checkHandOver(handedOver) }
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

function checkHandOver(handedOver: unknown): HandOver {
  const { lease, claimed } = (typeof handedOver === 'object' && handedOver !== null ? handedOver : {}) as Record<string, unknown>
  // Refused below or not, a failed claim must not become an unhandled rejection.
  if (claimed instanceof Promise) claimed.catch(() => undefined)
  if (!(typeof lease === 'number' && Number.isFinite(lease) && lease >= 0)) {
    throw new InvalidReply(`handedOver.lease must be a finite number of ms, 0 or more, got ${describeValue(lease)}`)
  }
  if (!(claimed instanceof Promise)) {
    throw new InvalidReply(`handedOver.claimed must be a promise, got ${describeValue(claimed)}`)
  }
  return { lease, claimed }
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
  readonly #timeouts: TimeoutWatch
  readonly #storeName: string
  readonly #holder: Holder
  /**
   * An acquire of ours failed or was abandoned without an answer, so the store may have granted it with
   * nobody told: an orphaned grant, which would refuse this owner (locks are not re-entrant) until its lease
   * ran out. The next acquire releases first, when nothing of ours could be freed by it.
   */
  #unheard = false
  /** Acquires sent and not yet answered to their caller (abandoned ones are not counted: they are unheard). */
  #acquiring = 0
  /** The release of a possible orphaned grant, while in flight: acquires wait for it. */
  #clearing: Promise<typeof GAVE_UP | undefined> | undefined

  /** `holder`: whether this owner holds the lock as far as its `Lock` knows. */
  constructor(context: StoreContext, key: string, owner: string, holder: Holder) {
    this.#store = context.store
    this.#key = key
    this.#owner = owner
    this.#logger = context.logger
    this.#timeout = context.operationTimeout
    this.#timeouts = context.timeouts
    this.#storeName = context.storeName
    this.#holder = holder
  }

  /** `wait`: keep a place in the store's wait queue (queueing stores only; see `LockStore.acquire`). */
  acquire(ttl: number | null, bounds?: CallBounds, wait?: WaitOptions): Promise<AcquireResult | typeof GAVE_UP> {
    const signal = bounds?.signal
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.#unheard || this.#clearing !== undefined) return this.#acquireAfterUnheard(ttl, bounds, wait)
    return this.#acquireNow(ttl, bounds, wait)
  }

  /**
   * Releases a grant we may hold unknowingly, then acquires. Only while no other acquire of ours is in flight
   * and our Lock holds nothing, so the release can only free the orphan (or nothing), never a grant we use;
   * acquires wait for it, so none of ours can be granted before it lands. Otherwise the doubt stays for the
   * next acquire.
   */
  async #acquireAfterUnheard(
    ttl: number | null,
    bounds: CallBounds | undefined,
    wait: WaitOptions | undefined,
  ): Promise<AcquireResult | typeof GAVE_UP> {
    if (this.#clearing === undefined && this.#acquiring === 0 && !this.#holder.holds()) {
      this.#unheard = false
      const clearing = this.#releaseUnheard(bounds)
      this.#clearing = clearing
      clearing.then(
        () => this.#endClearing(clearing),
        () => this.#endClearing(clearing),
      )
    }
    if (this.#clearing !== undefined && (await this.#clearing) === GAVE_UP) return GAVE_UP
    return this.#acquireNow(ttl, bounds, wait)
  }

  #endClearing(clearing: Promise<unknown>): void {
    if (this.#clearing === clearing) this.#clearing = undefined
  }

  async #releaseUnheard(bounds: CallBounds | undefined): Promise<typeof GAVE_UP | undefined> {
    let pending: Promise<unknown>
    try {
      pending = this.#store.release(this.#key, this.#owner)
    } catch (error) {
      pending = Promise.reject(error)
    }
    try {
      const released = await this.#call('release', pending, checkBoolean, bounds)
      if (released === GAVE_UP) {
        this.#unheard = true
        return GAVE_UP
      }
      if (released === true) this.#logger.warn({ key: this.#key }, 'verrou: released a grant whose acquire got no answer')
      return undefined
    } catch (error) {
      // Not known to be released: the acquire fails with the store's error, and the doubt stays.
      this.#unheard = true
      throw error
    }
  }

  #acquireNow(ttl: number | null, bounds: CallBounds | undefined, wait: WaitOptions | undefined) {
    let pending: Promise<unknown>
    try {
      pending =
        wait === undefined
          ? this.#store.acquire(this.#key, this.#owner, ttl)
          : this.#store.acquire(this.#key, this.#owner, ttl, wait)
    } catch (error) {
      pending = Promise.reject(error)
    }
    this.#acquiring++
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
   * The operation timeout (on the factory's one timer, see TimeoutWatch) and the deadline are armed one
   * microtask later, and only if the call has not settled by then: a store that answers at once costs nothing. The
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
              abandon()
              reject(signal.reason)
            }
      const settle = () => {
        settled = true
        if (grants) this.#acquiring--
        cancelTimeout?.()
        cancelDeadline?.()
        if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort)
      }
      // An acquire given up on may still be granted: we will not hear of it.
      const abandon = () => {
        settle()
        if (grants) this.#unheard = true
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
          if (grants && mayHaveLanded(error)) this.#unheard = true
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
            cancelTimeout = this.#timeouts.watch(() => {
              if (settled) return
              abandon()
              const message = `${this.#storeName} did not answer ${operation} of lock ${quoteKey(this.#key)} within ${this.#timeout} ms`
              reject(new E_LOCK_STORAGE_ERROR(message, { key: this.#key, operation }))
            })
          }
          if (bounded) {
            cancelDeadline = startTimer(deadline - monotonicNow(), () => {
              if (settled) return
              abandon()
              resolve(GAVE_UP)
            })
          }
        })
      }
      if (onAbort !== undefined) signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}
