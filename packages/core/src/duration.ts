import { parse } from '@lukeed/ms'
import { describeValue as describe, E_INVALID_ARGUMENT } from './errors.js'

/** Milliseconds as a number, or a string such as `'250ms'`, `'10s'`, `'5m'`, `'1.5h'`. */
export type Duration = number | string

/**
 * Converts a duration to whole milliseconds (rounded up, so a lease is never shorter than asked).
 * Rejects negative, non-finite and unparsable values; zero only where `allowZero`.
 */
export function toMilliseconds(value: Duration, what: string, { allowZero = false, allowInfinity = false } = {}): number {
  let ms: number | undefined
  if (typeof value === 'number') {
    ms = value
  } else if (typeof value === 'string') {
    ms = value.trim() === '' ? undefined : parse(value.trim())
  }

  if (ms === undefined || Number.isNaN(ms)) {
    throw new E_INVALID_ARGUMENT(`${what} must be a number of milliseconds or a duration such as "10s", got ${describe(value)}`)
  }
  if (ms === Number.POSITIVE_INFINITY && allowInfinity) return ms
  if (!Number.isFinite(ms)) {
    throw new E_INVALID_ARGUMENT(`${what} must be finite, got ${describe(value)}`)
  }
  if (ms < 0 || (ms === 0 && !allowZero)) {
    throw new E_INVALID_ARGUMENT(`${what} must be ${allowZero ? 'zero or more' : 'greater than zero'}, got ${describe(value)}`)
  }
  // Parsing multiplies in floating point: '1.1s' is 1100.0000000000002 and must stay 1100. A real fraction
  // ('1.0004ms', or a fractional number) rounds up, so a lease is never shorter than asked.
  const nearest = Math.round(ms)
  if (typeof value === 'string' && Math.abs(ms - nearest) <= ms * 1e-12) return nearest
  return Math.ceil(ms)
}

/** A lock's lease: a positive duration, or `null` for a lock that never expires. */
export function toTtl(value: Duration | null, what = 'ttl'): number | null {
  if (value === null) return null
  return toMilliseconds(value, what)
}
