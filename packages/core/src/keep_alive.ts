import { describeValue, quoteKey } from './describe_value.js'
import { type Duration, toMilliseconds } from './duration.js'
import { E_INVALID_ARGUMENT, E_LOCK_LOST, isVerrouError } from './errors.js'
import type { Logger } from './logger.js'
import { type CancelTimer, startTimer } from './timer.js'

export interface KeepAliveOptions {
  /** Whether to extend at all (default `true`); `false` only watches the local lease estimate. */
  extend?: boolean
  /** Extend when this fraction of the lease is left: a number strictly between 0 and 1 (default 0.5). */
  renewAtRemaining?: number
  /** After a failed extension (storage error), try again this soon (default: a tenth of the ttl). */
  retryDelay?: Duration
}

/** A running keep-alive. `signal` aborts with E_LOCK_LOST when the lock is lost; `stop()` ends it. */
export interface KeepAlive {
  readonly signal: AbortSignal
  /** Ends the keep-alive. Resolves once an extension still in flight has settled; its answer is ignored. */
  stop(): Promise<void>
}

/** Keep-alive options, validated once, before anything reaches the store. */
export interface KeepAlivePolicy {
  extend: boolean
  renewAtRemaining: number
  retryDelay: number | undefined
}

/** Validates `autoExtend` / `keepAlive()` options. Throws E_INVALID_ARGUMENT. */
export function resolveKeepAlivePolicy(options: unknown, what = 'keepAlive options'): KeepAlivePolicy {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new E_INVALID_ARGUMENT(`${what} must be an object, got ${describeValue(options)}`)
  }
  const { extend = true, renewAtRemaining = 0.5, retryDelay } = options as KeepAliveOptions
  if (typeof extend !== 'boolean') {
    throw new E_INVALID_ARGUMENT(`${what}.extend must be true or false, got ${describeValue(extend)}`)
  }
  if (typeof renewAtRemaining !== 'number' || !(renewAtRemaining > 0 && renewAtRemaining < 1)) {
    throw new E_INVALID_ARGUMENT(
      `${what}.renewAtRemaining must be a number between 0 and 1 (exclusive), got ${describeValue(renewAtRemaining)}`,
    )
  }
  return {
    extend,
    renewAtRemaining,
    retryDelay: retryDelay === undefined ? undefined : toMilliseconds(retryDelay, `${what}.retryDelay`),
  }
}

/** Where the holding a keep-alive watches stands: still held, ended by its own Lock, or lost. */
export type HoldingStatus = 'held' | 'released' | 'lost'

/** What the keep-alive needs from a lock: kept narrow so it never reaches into the store itself. */
export interface KeepAliveTarget {
  key: string
  ttl: number | null
  logger: Logger
  /** Extends the lease; rejects with E_LOCK_NOT_OWNED when the store refuses. */
  extend(): Promise<void>
  /** ms left on the local lease estimate, on the monotonic clock; `null` never expires. */
  remaining(): number | null
  status(): HoldingStatus
}

/**
 * Extends the lock while held. The lock is declared lost only on the store's word (an extension refused)
 * or when the lease runs out on the monotonic clock before an extension succeeded; wall-clock steps and
 * storage errors alone never lose it. A lock its own Lock released just ends the keep-alive quietly.
 */
export function startKeepAlive(target: KeepAliveTarget, policy: KeepAlivePolicy): KeepAlive {
  const controller = new AbortController()
  let cancel: CancelTimer | undefined
  let inFlight: Promise<void> = Promise.resolve()
  let stopped = false

  const stop = () => {
    stopped = true
    cancel?.()
    return inFlight
  }
  const lose = (cause?: unknown) => {
    if (stopped) return
    void stop()
    const reason =
      cause === undefined
        ? 'its lease ran out before an extension succeeded'
        : isVerrouError(cause, 'E_LOCK_NOT_OWNED')
          ? 'the store refused to extend it (expired or taken over)'
          : 'its lease ran out while extensions kept failing'
    target.logger.warn({ key: target.key, err: cause }, 'verrou: lock lost while held')
    controller.abort(
      new E_LOCK_LOST(`Lock ${quoteKey(target.key)} was lost while held: ${reason}`, {
        key: target.key,
        operation: 'keep alive',
        cause,
      }),
    )
  }
  // Timers must never keep a process alive after the work is done.
  const schedule = (ms: number) => {
    cancel = startTimer(ms, tick, { unref: true })
  }

  const ttl = target.ttl
  const renewBefore = ttl === null ? 0 : ttl * policy.renewAtRemaining
  const retryDelay = policy.retryDelay ?? Math.max(1, Math.floor((ttl ?? 0) / 10))

  function tick(): void {
    if (stopped) return
    const status = target.status()
    const remaining = target.remaining() ?? Number.POSITIVE_INFINITY
    if (status === 'released') {
      void stop()
    } else if (status === 'lost' || remaining <= 0) {
      lose()
    } else if (!policy.extend) {
      schedule(remaining)
    } else {
      extendNow()
    }
  }

  function extendNow(): void {
    inFlight = target.extend().then(
      () => {
        if (stopped) return
        schedule((target.remaining() ?? Number.POSITIVE_INFINITY) - renewBefore)
      },
      (error: unknown) => {
        if (stopped) return
        const left = target.remaining() ?? Number.POSITIVE_INFINITY
        if (target.status() === 'released') {
          // Its own Lock released it meanwhile: a refusal now is expected, not a loss.
          void stop()
        } else if (isVerrouError(error, 'E_LOCK_NOT_OWNED')) {
          lose(error)
        } else if (left <= 0) {
          lose(error)
        } else {
          // A storage error: the lease may still be good. Try again soon; give up when it has run out.
          target.logger.warn({ key: target.key, err: error }, 'verrou: extending a held lock failed, retrying')
          schedule(Math.min(retryDelay, left))
        }
      },
    )
  }

  if (ttl !== null) {
    const remaining = target.remaining() ?? Number.POSITIVE_INFINITY
    schedule(policy.extend ? remaining - renewBefore : remaining)
  }
  return { signal: controller.signal, stop }
}
