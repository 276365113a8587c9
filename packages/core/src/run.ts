import type { AcquireOptions } from './acquire.js'
import { describeValue, quoteKey } from './describe_value.js'
import { E_INVALID_ARGUMENT, E_LOCK_LOST, isVerrouError } from './errors.js'
import { type KeepAlive, type KeepAliveOptions, type KeepAlivePolicy, resolveKeepAlivePolicy } from './keep_alive.js'
import type { Logger } from './logger.js'

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

export type RunCallback<T> = (context: LockContext) => T | Promise<T>

/** Checks what `run` takes besides the retry options, before anything reaches the store. */
export function resolveRunOptions(callback: unknown, options: Pick<RunOptions, 'autoExtend'>): KeepAlivePolicy {
  if (typeof callback !== 'function') throw new E_INVALID_ARGUMENT(`run needs a callback, got ${describeValue(callback)}`)
  if (options === null || typeof options !== 'object') {
    throw new E_INVALID_ARGUMENT(`options must be an object, got ${describeValue(options)}`)
  }
  const { autoExtend = false } = options
  if (typeof autoExtend === 'boolean') return resolveKeepAlivePolicy({ extend: autoExtend })
  return resolveKeepAlivePolicy(autoExtend, 'autoExtend')
}

/** What `run` needs from its Lock. */
export interface RunTarget {
  key: string
  logger: Logger
  acquire(): Promise<boolean>
  /** Whether this Lock has an acquisition on record (even one whose local estimate ran out). */
  hasHolding(): boolean
  keepAlive(policy: KeepAlivePolicy): KeepAlive
  fencingToken(): number
  release(): Promise<void>
}

/**
 * Acquires, runs the callback while held, and always releases. Any failure after a grant releases it.
 * A callback error wins over a release error. A lock lost while the callback ran is E_LOCK_LOST: the signal's
 * reason if the keep-alive saw it, else one made from the final release's E_LOCK_NOT_OWNED.
 */
export async function runWhileHeld<T>(
  target: RunTarget,
  callback: RunCallback<T>,
  keepAlivePolicy: KeepAlivePolicy,
): Promise<RunResult<T>> {
  const { key, logger } = target
  const heldBefore = target.hasHolding()
  let keeper: KeepAlive | undefined
  let result: T
  try {
    if (!(await target.acquire())) return [false, null]
    keeper = target.keepAlive(keepAlivePolicy)
    result = await callback({ signal: keeper.signal, fencingToken: target.fencingToken() })
  } catch (error) {
    void keeper?.stop()
    if (!heldBefore && target.hasHolding()) {
      await target.release().catch((releaseError: unknown) => {
        logger.warn({ key, err: releaseError }, 'verrou: release after a failed run failed')
      })
    }
    throw error
  }
  void keeper.stop()
  if (keeper.signal.aborted) {
    // Lost while the callback ran. If only the local estimate ran out, the store may still hold it: free it.
    if (target.hasHolding()) await target.release().catch(() => {})
    throw keeper.signal.reason
  }
  try {
    await target.release()
  } catch (error) {
    if (!isVerrouError(error, 'E_LOCK_NOT_OWNED')) throw error
    const message = `Lock ${quoteKey(key)} was lost while run's callback ran: the final release found it expired or taken over`
    throw new E_LOCK_LOST(message, { key, operation: 'run', cause: error })
  }
  return [true, result]
}
