/** Stable machine-readable codes, one per error class. */
export type VerrouErrorCode = 'E_LOCK_NOT_OWNED' | 'E_LOCK_LOST' | 'E_LOCK_STORAGE_ERROR' | 'E_INVALID_ARGUMENT'

/** Base class of every error Verrou throws on purpose. */
export class VerrouError extends Error {
  readonly code: VerrouErrorCode

  constructor(code: VerrouErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** The lock is not held by this owner: never acquired, already released, expired, or taken over. */
export class E_LOCK_NOT_OWNED extends VerrouError {
  readonly key: string

  constructor(key: string, action: 'release' | 'extend') {
    super('E_LOCK_NOT_OWNED', `Cannot ${action} lock "${key}": it is not held by this owner (released, expired or taken over)`)
    this.key = key
  }
}

/**
 * The reason a held lock's `signal` aborts: an extension was refused (`cause` is the E_LOCK_NOT_OWNED), or
 * the lease ran out before one succeeded (`cause` is the last storage error, if any).
 */
export class E_LOCK_LOST extends VerrouError {
  readonly key: string

  constructor(key: string, cause?: unknown) {
    super('E_LOCK_LOST', `Lock "${key}" was lost while held: its lease ran out or was taken over`, { cause })
    this.key = key
  }
}

/** The backend failed (unreachable, timed out, refused, answered something unexpected). `cause` holds its error. */
export class E_LOCK_STORAGE_ERROR extends VerrouError {
  readonly key: string | undefined
  readonly operation: string | undefined

  constructor(message: string, options: { cause?: unknown; key?: string; operation?: string } = {}) {
    super('E_LOCK_STORAGE_ERROR', message, { cause: options.cause })
    this.key = options.key
    this.operation = options.operation
  }
}

/** An argument was rejected before anything reached the store. */
export class E_INVALID_ARGUMENT extends VerrouError {
  constructor(message: string) {
    super('E_INVALID_ARGUMENT', message)
  }
}

/** A value as error messages show it; never throws, even for objects String() cannot convert. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  try {
    return String(value)
  } catch {
    return Object.prototype.toString.call(value)
  }
}

/** Wraps whatever a store threw into a storage error, keeping Verrou's own errors as they are. */
export function toStorageError(error: unknown, operation: string, key: string): VerrouError {
  if (error instanceof VerrouError) return error
  const reason = error instanceof Error ? error.message : describeValue(error)
  return new E_LOCK_STORAGE_ERROR(`Lock store failed to ${operation} "${key}": ${reason}`, { cause: error, key, operation })
}
