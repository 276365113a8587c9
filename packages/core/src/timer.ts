/** The longest delay setTimeout honours; a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** A monotonic clock for every local deadline and lease estimate: wall-clock steps must not move them. */
export const monotonicNow = (): number => performance.now()

/** Stops a timer from `startTimer`; harmless after it fired. */
export type CancelTimer = () => void

/**
 * Calls `run` after `ms`, for any `ms` a duration may be (chaining timers past setTimeout's cap);
 * `Infinity` never fires. `unref`: the timer alone must not keep the process alive.
 */
export function startTimer(ms: number, run: () => void, { unref = false } = {}): CancelTimer {
  if (ms === Number.POSITIVE_INFINITY) return () => {}
  let handle: ReturnType<typeof setTimeout>
  const arm = (left: number) => {
    const step = Math.min(Math.max(0, left), MAX_TIMER_MS)
    handle = setTimeout(left > MAX_TIMER_MS ? () => arm(left - MAX_TIMER_MS) : run, step)
    if (unref && typeof handle === 'object' && handle !== null && 'unref' in handle) handle.unref()
  }
  arm(ms)
  return () => clearTimeout(handle)
}

/** Resolves after `ms` or when `wake` resolves, whichever is first; rejects with the signal's reason on abort. */
export function sleep(ms: number, signal?: AbortSignal, wake?: Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    let cancel: CancelTimer = () => {}
    const done = () => {
      cancel()
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }
    const onAbort = () => {
      cancel()
      reject(signal?.reason)
    }
    cancel = startTimer(ms, done)
    signal?.addEventListener('abort', onAbort, { once: true })
    wake?.then(done)
  })
}
