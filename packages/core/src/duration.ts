import { parse } from '@lukeed/ms'
import { describeValue } from './describe_value.js'
import { E_INVALID_ARGUMENT } from './errors.js'

/** Milliseconds as a number, or a string such as `'250ms'`, `'10s'`, `'5m'`, `'1.5h'`. */
export type Duration = number | string

/**
 * The longest duration Verrou accepts anywhere (ttl, timeouts, delays): Number.MAX_SAFE_INTEGER ms, so
 * every accepted duration is an exact integer that survives JSON (serialize/restoreLock) and every store.
 * Timers accept it too: `startTimer` chains past setTimeout's 2^31-1 ms cap.
 */
const MAX_DURATION_MS = Number.MAX_SAFE_INTEGER

interface DurationRules {
  allowZero?: boolean
  allowInfinity?: boolean
}

/**
 * Converts a duration to whole milliseconds (rounded up, so a lease is never shorter than asked).
 * Rejects negative, non-finite, unparsable and too large values; zero only where `allowZero`.
 */
export function toMilliseconds(
  value: Duration,
  what: string,
  { allowZero = false, allowInfinity = false }: DurationRules = {},
): number {
  let ms: number | undefined
  if (typeof value === 'number') {
    ms = value
  } else if (typeof value === 'string') {
    ms = value.trim() === '' ? undefined : parse(value.trim())
  }

  if (ms === undefined || Number.isNaN(ms)) {
    throw new E_INVALID_ARGUMENT(
      `${what} must be a number of milliseconds or a duration such as "10s", got ${describeValue(value)}`,
    )
  }
  if (ms === Number.POSITIVE_INFINITY && allowInfinity) return ms
  if (!Number.isFinite(ms)) {
    throw new E_INVALID_ARGUMENT(`${what} must be finite, got ${describeValue(value)}`)
  }
  if (ms < 0 || (ms === 0 && !allowZero)) {
    throw new E_INVALID_ARGUMENT(
      `${what} must be ${allowZero ? 'zero or more' : 'greater than zero'}, got ${describeValue(value)}`,
    )
  }
  // Parsing multiplies in floating point: '1.1s' is 1100.0000000000002 and must stay 1100. A real fraction
  // ('1.0004ms', or a fractional number) rounds up, so a lease is never shorter than asked.
  const nearest = Math.round(ms)
  const whole = typeof value === 'string' && Math.abs(ms - nearest) <= ms * 1e-12 ? nearest : Math.ceil(ms)
  if (whole > MAX_DURATION_MS) {
    throw new E_INVALID_ARGUMENT(
      `${what} must be at most ${MAX_DURATION_MS} ms (Number.MAX_SAFE_INTEGER)${allowInfinity ? ' or Infinity' : ''}, got ${describeValue(value)}`,
    )
  }
  return whole
}

/** A lock's lease: a positive duration, or `null` for a lock that never expires. */
export function toTtl(value: Duration | null, what = 'ttl'): number | null {
  if (value === null) return null
  return toMilliseconds(value, what)
}
