import { type Duration, toMilliseconds } from './duration.js'
import { describeValue, E_INVALID_ARGUMENT } from './errors.js'
import type { Logger } from './logger.js'
import type { LockStore, Unsubscribe } from './store.js'

/** How `acquire` keeps trying while the lock is held by someone else. */
export interface RetryOptions {
  /** Longest time to keep trying, all attempts together. Default: `Infinity` (no cap). */
  timeout?: Duration
  /** Pause between attempts; with `backoff: 'exponential'`, the first pause. Default: 250 ms. */
  delay?: Duration
  /** Most attempts, the first one included (at least 1). Default: `Infinity`. */
  attempts?: number
  /**
   * `'fixed'` (default) waits `delay` every time: predictable, best when a few waiters share a key and
   * releases are announced (see `LockStore.subscribeToReleases`). `'exponential'` doubles the pause after
   * each failed attempt up to `maxDelay`, with jitter: best for many waiters polling a store that cannot
   * announce releases, so they do not hammer it in lockstep.
   */
  backoff?: 'fixed' | 'exponential'
  /** Cap of the exponential pause. Default: 5 s. */
  maxDelay?: Duration
}

export interface RetryPolicy {
  timeout: number
  delay: number
  attempts: number
  backoff: 'fixed' | 'exponential'
  maxDelay: number
}

export const defaultRetryPolicy: RetryPolicy = {
  timeout: Number.POSITIVE_INFINITY,
  delay: 250,
  attempts: Number.POSITIVE_INFINITY,
  backoff: 'fixed',
  maxDelay: 5000,
}

/** Validates retry options and fills what they leave out from `base`. Throws E_INVALID_ARGUMENT. */
export function resolveRetryPolicy(options: RetryOptions | undefined, base: RetryPolicy = defaultRetryPolicy): RetryPolicy {
  if (options === undefined) return base
  if (options === null || typeof options !== 'object') {
    throw new E_INVALID_ARGUMENT(`retry must be an object, got ${describeValue(options)}`)
  }
  const policy = { ...base }
  if (options.timeout !== undefined) {
    policy.timeout = toMilliseconds(options.timeout, 'retry.timeout', { allowZero: true, allowInfinity: true })
  }
  if (options.delay !== undefined) {
    policy.delay = toMilliseconds(options.delay, 'retry.delay', { allowZero: true })
  }
  if (options.maxDelay !== undefined) {
    policy.maxDelay = toMilliseconds(options.maxDelay, 'retry.maxDelay', { allowZero: true })
  }
  if (options.attempts !== undefined) {
    const attempts = options.attempts
    const valid =
      typeof attempts === 'number' && attempts >= 1 && (Number.isInteger(attempts) || attempts === Number.POSITIVE_INFINITY)
    if (!valid) {
      throw new E_INVALID_ARGUMENT(
        `retry.attempts must be a whole number of at least 1 (or Infinity), got ${describeValue(attempts)}`,
      )
    }
    policy.attempts = attempts
  }
  if (options.backoff !== undefined) {
    if (options.backoff !== 'fixed' && options.backoff !== 'exponential') {
      throw new E_INVALID_ARGUMENT(`retry.backoff must be "fixed" or "exponential", got ${describeValue(options.backoff)}`)
    }
    policy.backoff = options.backoff
  }
  return policy
}

/** The pause after failed attempt number `attempt` (1-based). */
export function pauseAfter(policy: RetryPolicy, attempt: number): number {
  if (policy.backoff === 'fixed') return policy.delay
  const ceiling = Math.min(policy.maxDelay, policy.delay * 2 ** Math.min(attempt - 1, 30))
  // Equal jitter: at least half the ceiling, so waiters spread out without ever retrying in a burst.
  return ceiling / 2 + Math.random() * (ceiling / 2)
}

/** A monotonic clock for deadlines: wall-clock jumps must not shorten or stretch a wait. */
export const monotonicNow = (): number => performance.now()

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal, wake?: Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
    wake?.then(done)
  })
}

/**
 * A waiter's place in the in-process queue of one key. The store's release notification wakes only the
 * first waiter that is not already awake: one round trip per release from this process, not one per waiter.
 */
export class ReleaseWaiter {
  #notified = false
  #handoff = false
  #wake: (() => void) | undefined
  readonly #queue: KeyQueue

  constructor(queue: KeyQueue) {
    this.#queue = queue
  }

  /** Sleeps at most `ms`, less if the key is released meanwhile (or was since the last attempt). */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.#notified) {
      this.#notified = false
      return Promise.resolve()
    }
    const woken = new Promise<void>((resolve) => {
      this.#wake = resolve
    })
    return sleep(ms, signal, woken).finally(() => {
      this.#wake = undefined
      this.#notified = false
    })
  }

  /** Woken by a release and not yet back at the store: a hand-off to this waiter is under way. */
  get handoffPending(): boolean {
    return this.#handoff
  }

  /** Called after each attempt at the store: the hand-off, if any, is over (won or lost). */
  attempted(): void {
    this.#handoff = false
  }

  /** Returns true if this waiter took the notification. */
  notify(): boolean {
    if (this.#notified) return false
    this.#notified = true
    this.#handoff = true
    this.#wake?.()
    return true
  }

  leave(): void {
    this.#queue.remove(this)
  }
}

class KeyQueue {
  readonly waiters: ReleaseWaiter[] = []
  unsubscribe: Promise<Unsubscribe | undefined> | undefined

  constructor(readonly onEmpty: () => void) {}

  notifyOne(): void {
    for (const waiter of this.waiters) {
      if (waiter.notify()) return
    }
  }

  remove(waiter: ReleaseWaiter): void {
    const index = this.waiters.indexOf(waiter)
    if (index === -1) return
    this.waiters.splice(index, 1)
    if (this.waiters.length === 0) this.onEmpty()
  }
}

const queues = new WeakMap<LockStore, Map<string, KeyQueue>>()

/**
 * Whether a release of `key` was just announced to a waiter of this process that has not tried yet. A new
 * acquirer then queues behind it instead of barging in: without this, a worker that releases and acquires
 * again in a loop wins every time and starves the waiters it just woke.
 */
export function handoffPending(store: LockStore, key: string): boolean {
  const queue = queues.get(store)?.get(key)
  return queue?.waiters.some((waiter) => waiter.handoffPending) ?? false
}

/** A subscription slower than this is given up on: the waiter polls rather than stall. */
const SUBSCRIBE_TIMEOUT_MS = 2_000

/** Rejects after `ms`; if `promise` still resolves later, its unsubscribe is called so nothing leaks. */
function withDeadline(promise: Promise<Unsubscribe>, ms: number): Promise<Unsubscribe> {
  return new Promise<Unsubscribe>((resolve, reject) => {
    let late = false
    const timer = setTimeout(() => {
      late = true
      reject(new Error(`subscribing to releases took longer than ${ms} ms`))
    }, ms)
    promise.then(
      (unsubscribe) => {
        clearTimeout(timer)
        if (late) void Promise.resolve(unsubscribe()).catch(() => {})
        else resolve(unsubscribe)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}

/**
 * Joins the queue of waiters for `key` on `store`, subscribing to the store's release notifications when
 * this is the first waiter. Returns `undefined` when the store cannot notify: the caller then just polls.
 */
export async function joinReleaseQueue(store: LockStore, key: string, logger: Logger): Promise<ReleaseWaiter | undefined> {
  const subscribe = store.subscribeToReleases
  if (subscribe === undefined) return undefined

  let byKey = queues.get(store)
  if (byKey === undefined) {
    byKey = new Map()
    queues.set(store, byKey)
  }
  let queue = byKey.get(key)
  if (queue === undefined) {
    const keyQueues = byKey
    const created: KeyQueue = new KeyQueue(() => {
      if (keyQueues.get(key) === created) keyQueues.delete(key)
      void created.unsubscribe
        ?.then((unsubscribe) => unsubscribe?.())
        .catch((error: unknown) => {
          logger.warn({ key, err: error }, 'verrou: ending a release subscription failed')
        })
    })
    created.unsubscribe = withDeadline(
      subscribe.call(store, key, () => created.notifyOne()),
      SUBSCRIBE_TIMEOUT_MS,
    ).catch((error: unknown) => {
      // Waiting still works without notifications: it falls back to polling at the retry delay.
      logger.warn({ key, err: error }, 'verrou: subscribing to releases failed, polling instead')
      return undefined
    })
    byKey.set(key, created)
    queue = created
  }
  const waiter = new ReleaseWaiter(queue)
  queue.waiters.push(waiter)
  await queue.unsubscribe
  return waiter
}
