import { describeValue } from './describe_value.js'
import { type Duration, toMilliseconds } from './duration.js'
import { E_INVALID_ARGUMENT } from './errors.js'

/** How `acquire` keeps trying while the lock is held by someone else. */
export interface RetryOptions {
  /**
   * Longest time `acquire` may take, all of it: subscribing, pauses and retries (a retry in flight at the
   * deadline is abandoned, its late grant released). The first attempt is always awaited, so 0 means one
   * attempt. Default: `Infinity` (no cap).
   */
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

const defaultRetryPolicy: RetryPolicy = {
  timeout: Number.POSITIVE_INFINITY,
  delay: 250,
  attempts: Number.POSITIVE_INFINITY,
  backoff: 'fixed',
  maxDelay: 5000,
}

/**
 * Validates retry options once and fills what they leave out from `base` (the factory's defaults). Throws
 * E_INVALID_ARGUMENT naming the bad option; the store is never called with a policy that did not pass.
 */
export function resolveRetryPolicy(options: RetryOptions | undefined, base: RetryPolicy = defaultRetryPolicy): RetryPolicy {
  if (options === undefined) return base
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
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
