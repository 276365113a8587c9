import { type Duration, toMilliseconds } from './duration.js'
import { E_LOCK_LOST, E_LOCK_NOT_OWNED } from './errors.js'
import type { Logger } from './logger.js'

export interface KeepAliveOptions {
  /** Whether to extend at all (default `true`); `false` only watches the local lease estimate. */
  extend?: boolean
  /** Extend when this fraction of the lease is left (default 0.5, between 0 and 1 exclusive). */
  renewAtRemaining?: number
  /** After a failed extension (storage error), try again this soon (default: a tenth of the ttl). */
  retryDelay?: Duration
}

/** A running keep-alive. `signal` aborts when the lock is known lost; `stop()` ends it. */
export interface KeepAlive {
  readonly signal: AbortSignal
  stop(): void
}

/** What the keep-alive needs from a lock: kept narrow so it never reaches into the store itself. */
export interface KeepAliveTarget {
  key: string
  ttl: number | null
  logger: Logger
  extend(): Promise<void>
  /** ms left on the local lease estimate; `null` never expires. */
  remaining(): number | null
}

export function startKeepAlive(target: KeepAliveTarget, options: KeepAliveOptions): KeepAlive {
  const controller = new AbortController()
  const renewAt = options.renewAtRemaining ?? 0.5
  const shouldExtend = options.extend ?? true
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false

  const stop = () => {
    stopped = true
    clearTimeout(timer)
  }
  const lose = (cause?: unknown) => {
    if (stopped) return
    stop()
    target.logger.warn({ key: target.key, err: cause }, 'verrou: lock lost while held')
    controller.abort(new E_LOCK_LOST(target.key, cause))
  }
  // Timers must never keep a process alive after the work is done.
  const schedule = (ms: number, run: () => void) => {
    timer = setTimeout(run, Math.max(0, ms))
    if (typeof timer === 'object' && timer !== null && 'unref' in timer) timer.unref()
  }

  const ttl = target.ttl
  if (ttl === null) return { signal: controller.signal, stop }

  const retryDelay =
    options.retryDelay === undefined ? Math.max(1, Math.floor(ttl / 10)) : toMilliseconds(options.retryDelay, 'retryDelay')

  const tick = () => {
    if (stopped) return
    const remaining = target.remaining() ?? Number.POSITIVE_INFINITY
    if (remaining <= 0) return lose()
    if (!shouldExtend) return schedule(remaining, tick)
    target.extend().then(
      () => {
        if (stopped) return
        schedule((target.remaining() ?? ttl) - ttl * renewAt, tick)
      },
      (error: unknown) => {
        if (stopped) return
        if (error instanceof E_LOCK_NOT_OWNED) return lose(error)
        // A storage error: the lease may still be good. Try again soon; give up when it has run out.
        target.logger.warn({ key: target.key, err: error }, 'verrou: extending a held lock failed, retrying')
        const left = target.remaining() ?? Number.POSITIVE_INFINITY
        if (left <= 0) return lose(error)
        schedule(Math.min(retryDelay, left), tick)
      },
    )
  }

  const remaining = target.remaining() ?? ttl
  schedule(shouldExtend ? remaining - ttl * renewAt : remaining, tick)
  return { signal: controller.signal, stop }
}
