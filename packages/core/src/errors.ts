import { describeCause, quoteKey } from './describe_value.js'

/** Stable machine-readable codes, one per error class. */
export type VerrouErrorCode = 'E_LOCK_NOT_OWNED' | 'E_LOCK_LOST' | 'E_LOCK_STORAGE_ERROR' | 'E_INVALID_ARGUMENT'

/** What every Verrou error may carry besides its message. */
export interface VerrouErrorOptions {
  /** The error behind this one (the backend's error, the refusal that lost a lock). */
  cause?: unknown
  /** The lock key concerned, in full (messages shorten long keys). */
  key?: string
  /** The operation that failed: 'acquire', 'release', 'extend', 'force release', 'check', ... */
  operation?: string
}

/**
 * Marks errors made by any copy of @verrou/core: `Symbol.for` is shared by every copy loaded in a process,
 * so an application's copy recognises the errors a driver's copy threw.
 */
const BRAND = Symbol.for('@verrou/core:error')
const CODES: ReadonlySet<string> = new Set<VerrouErrorCode>([
  'E_LOCK_NOT_OWNED',
  'E_LOCK_LOST',
  'E_LOCK_STORAGE_ERROR',
  'E_INVALID_ARGUMENT',
])

function isBranded(value: unknown): value is VerrouError {
  if (typeof value !== 'object' || value === null) return false
  const record = value as { [BRAND]?: unknown; code?: unknown }
  return record[BRAND] === true && typeof record.code === 'string' && CODES.has(record.code)
}

/**
 * Base class of every error Verrou throws on purpose. Every class has the same constructor,
 * `(message, { cause, key, operation })`, and a stable `code`.
 *
 * `instanceof` works across two loaded copies of core (it checks the code and a shared brand, not the
 * prototype); so does `isVerrouError(error, code)`.
 */
export abstract class VerrouError extends Error {
  /** The code of each concrete class. */
  static readonly code: VerrouErrorCode | undefined = undefined
  readonly code: VerrouErrorCode
  readonly key: string | undefined
  readonly operation: string | undefined

  constructor(message: string, options: VerrouErrorOptions = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined)
    const code = (new.target as typeof VerrouError).code
    if (code === undefined) throw new TypeError('VerrouError is abstract: throw one of its subclasses')
    this.code = code
    this.name = code
    this.key = options.key
    this.operation = options.operation
    Object.defineProperty(this, BRAND, { value: true })
  }

  static override [Symbol.hasInstance] = recognisedAcrossCopies
}

/**
 * `instanceof` for Verrou errors: the prototype chain first, then, for an error made by another copy of
 * core, the brand and the code. `this` is the class on the right of `instanceof`. Core's own classes
 * match by code; a subclass someone else defines keeps ordinary instanceof.
 */
function recognisedAcrossCopies(this: typeof VerrouError, value: unknown): boolean {
  if (Function.prototype[Symbol.hasInstance].call(this, value)) return true
  if (!isBranded(value)) return false
  if (this === VerrouError) return true
  return Object.hasOwn(this, 'code') && value.code === this.code
}

/** The lock is not held by this owner: never acquired, already released, expired, or taken over. */
export class E_LOCK_NOT_OWNED extends VerrouError {
  static override readonly code = 'E_LOCK_NOT_OWNED'
}

/**
 * A held lock was lost: its lease ran out or was taken over while held. The reason a held lock's `signal`
 * aborts, and what `run` rejects with when its callback finished without exclusion. `cause`: the refusal
 * (E_LOCK_NOT_OWNED) or the last storage error, when there was one.
 */
export class E_LOCK_LOST extends VerrouError {
  static override readonly code = 'E_LOCK_LOST'
}

/** The backend failed (unreachable, timed out, refused, answered something unexpected). `cause` holds its error. */
export class E_LOCK_STORAGE_ERROR extends VerrouError {
  static override readonly code = 'E_LOCK_STORAGE_ERROR'

  /**
   * For drivers: a backend failure as a storage error in the message style core uses ("RedisStore failed
   * to acquire lock "k": ECONNRESET"), with long keys shortened and non-Error causes described.
   * `store` names the driver (default "Lock store").
   */
  static from(
    cause: unknown,
    context: { operation: string; key?: string; store?: string; detail?: string },
  ): E_LOCK_STORAGE_ERROR {
    const { operation, key, store = 'Lock store', detail = describeCause(cause) } = context
    const lock = key === undefined ? '' : ` lock ${quoteKey(key)}`
    return new E_LOCK_STORAGE_ERROR(`${store} failed to ${operation}${lock}: ${detail}`, { cause, key, operation })
  }
}

/** An argument was rejected before anything reached the store. */
export class E_INVALID_ARGUMENT extends VerrouError {
  static override readonly code = 'E_INVALID_ARGUMENT'
}

interface ErrorsByCode {
  E_LOCK_NOT_OWNED: E_LOCK_NOT_OWNED
  E_LOCK_LOST: E_LOCK_LOST
  E_LOCK_STORAGE_ERROR: E_LOCK_STORAGE_ERROR
  E_INVALID_ARGUMENT: E_INVALID_ARGUMENT
}

/**
 * Whether `error` is a Verrou error (with `code`, when given), whichever copy of @verrou/core made it:
 * `errors.isVerrouError(error, 'E_LOCK_NOT_OWNED')`.
 */
export function isVerrouError<C extends VerrouErrorCode>(error: unknown, code: C): error is ErrorsByCode[C]
export function isVerrouError(error: unknown): error is VerrouError
export function isVerrouError(error: unknown, code?: VerrouErrorCode): boolean {
  return isBranded(error) && (code === undefined || error.code === code)
}
