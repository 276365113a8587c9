import { describeValue } from './describe_value.js'
import { type Duration, toMilliseconds, toTtl } from './duration.js'
import { E_INVALID_ARGUMENT } from './errors.js'
import { validateKeyOrOwner } from './key_and_owner.js'
import { Lock, type LockShared } from './lock.js'
import { type Logger, silentLogger } from './logger.js'
import { randomOwnerId } from './owner_id.js'
import { type RetryOptions, type RetryPolicy, resolveRetryPolicy } from './retry_policy.js'
import { parseSerializedLock } from './serialized_lock.js'
import { type LockKind, sharedModeOf, sharedModeStore } from './shared_mode_store.js'
import type { LockStore } from './store.js'
import { storeContext } from './store_call.js'

export interface LockFactoryOptions {
  /** Retry defaults for every `acquire` of the locks it creates; `acquire({ retry })` overrides them. */
  retry?: RetryOptions
  /** Lease of a lock created without one. Default: 30 s. */
  defaultTtl?: Duration | null
  /**
   * Longest a single store call may take before it fails with `E_LOCK_STORAGE_ERROR` (default 10 s;
   * `Infinity` to wait for ever). A lock acquired after its call gave up is released again.
   */
  operationTimeout?: Duration
  /** A pino-compatible logger. Default: silent. */
  logger?: Logger
}

export interface CreateLockOptions {
  /** The owner id. Default: a random UUID (122 random bits). Two locks with the same key and owner are the same lock. */
  owner?: string
}

export interface CreateSemaphoreOptions extends CreateLockOptions {
  /**
   * How many permits of the key may be held at once: a positive whole number. Each request brings its own
   * limit and the store keeps none: a permit is granted while fewer than its own `limit` are held (counting
   * those queued ahead of it), so with different limits for one key, each acquirer is held to its own.
   */
  limit: number
  /** Lease of each permit: milliseconds, a duration string or `null` (never expires). Default: the factory's `defaultTtl`. */
  ttl?: Duration | null
}

/**
 * A read-write lock on one key: any number of readers at once, or one writer alone. Both sides are Locks
 * with the same owner id; once a writer waits, readers that come later wait behind it.
 */
export interface ReadWriteLock {
  readonly key: string
  /** Shared with other readers, excluded by a writer. */
  readonly read: Lock
  /** Exclusive of readers and writers. */
  readonly write: Lock
}

const DEFAULT_TTL = 30_000
const EMPTY_OPTIONS: CreateLockOptions = Object.freeze({})
const DEFAULT_OPERATION_TIMEOUT = 10_000
const STORE_METHODS = ['acquire', 'release', 'extend', 'forceRelease', 'isLocked'] as const
const LOGGER_METHODS = ['trace', 'debug', 'info', 'warn', 'error'] as const

/** Throws E_INVALID_ARGUMENT unless `store` implements the LockStore contract. `what` names it in the message. */
export function validateStore(store: unknown, what: string): asserts store is LockStore {
  const record = store as Record<string, unknown> | null
  const missing =
    record === null || typeof record !== 'object'
      ? undefined
      : STORE_METHODS.find((method) => typeof record[method] !== 'function')
  if (record === null || typeof record !== 'object' || missing !== undefined) {
    const problem = missing === undefined ? `got ${describeValue(store)}` : `it has no ${missing}() method`
    throw new E_INVALID_ARGUMENT(`${what} must be a lock store (an object implementing LockStore): ${problem}`)
  }
  const subscribe = record.subscribeToReleases
  if (subscribe !== undefined && typeof subscribe !== 'function') {
    throw new E_INVALID_ARGUMENT(`${what} must be a lock store: subscribeToReleases must be a method when present`)
  }
  validateSharedStore(record.shared, what)
}

const SHARED_METHODS = ['acquire', 'release', 'extend', 'forceRelease', 'isLocked', 'leaveQueue'] as const

/** `store.shared`, when present, must implement SharedLockStore: checked once, not at the first semaphore. */
function validateSharedStore(shared: unknown, what: string): void {
  if (shared === undefined) return
  const record = shared as Record<string, unknown> | null
  if (record === null || typeof record !== 'object') {
    throw new E_INVALID_ARGUMENT(
      `${what} must be a lock store: "shared" must be a SharedLockStore when present, got ${describeValue(shared)}`,
    )
  }
  const missing = SHARED_METHODS.find((method) => typeof record[method] !== 'function')
  if (missing !== undefined) {
    throw new E_INVALID_ARGUMENT(`${what} must be a lock store: its "shared" store has no ${missing}() method`)
  }
  const subscribe = record.subscribeToReleases
  if (subscribe !== undefined && typeof subscribe !== 'function') {
    throw new E_INVALID_ARGUMENT(`${what} must be a lock store: shared.subscribeToReleases must be a method when present`)
  }
}

/** Throws E_INVALID_ARGUMENT unless `limit` is a positive safe integer. */
function validateLimit(limit: unknown): number {
  if (typeof limit === 'number' && Number.isSafeInteger(limit) && limit > 0) return limit
  throw new E_INVALID_ARGUMENT(`A semaphore limit must be a positive whole number, got ${describeValue(limit)}`)
}

function validateOptions<T extends object>(options: T | null | undefined, what: string): T {
  if (options === null || typeof options !== 'object') {
    throw new E_INVALID_ARGUMENT(`${what} options must be an object, got ${describeValue(options)}`)
  }
  return options
}

function validateLogger(logger: unknown): Logger {
  const record = logger as Record<string, unknown> | null
  if (record === null || typeof record !== 'object' || LOGGER_METHODS.some((level) => typeof record[level] !== 'function')) {
    throw new E_INVALID_ARGUMENT(`logger must have trace, debug, info, warn and error methods, got ${describeValue(logger)}`)
  }
  return logger as Logger
}

/** The factory options, validated once (by LockFactory and, for every store at once, by Verrou). */
interface FactoryDefaults {
  retry: RetryPolicy
  defaultTtl: number | null
  operationTimeout: number
  logger: Logger
}

function resolveFactoryOptions(options: LockFactoryOptions): FactoryDefaults {
  if (options === null || typeof options !== 'object') {
    throw new E_INVALID_ARGUMENT(`LockFactory options must be an object, got ${describeValue(options)}`)
  }
  return {
    retry: resolveRetryPolicy(options.retry),
    defaultTtl: options.defaultTtl === undefined ? DEFAULT_TTL : toTtl(options.defaultTtl, 'defaultTtl'),
    operationTimeout:
      options.operationTimeout === undefined
        ? DEFAULT_OPERATION_TIMEOUT
        : toMilliseconds(options.operationTimeout, 'operationTimeout', { allowInfinity: true }),
    logger: options.logger === undefined ? silentLogger : validateLogger(options.logger),
  }
}

/** Creates and restores locks on one store. */
export class LockFactory {
  readonly #store: LockStore
  readonly #defaults: FactoryDefaults
  readonly #shared: LockShared
  /**
   * The contexts of permits, readers and writers, built on first use: 'read', 'write', or a permit's limit.
   * One per mode, so each has one store adapter (and so one in-process release queue per key).
   */
  readonly #sharedContexts = new Map<string | number, LockShared>()

  constructor(store: LockStore, options: LockFactoryOptions = {}) {
    validateStore(store, 'The LockFactory store')
    this.#store = store
    this.#defaults = resolveFactoryOptions(options)
    const { retry, logger, operationTimeout } = this.#defaults
    this.#shared = { ...storeContext(store, logger, operationTimeout), retry, kind: 'lock', limit: null }
  }

  /** The store this factory's locks live in. */
  get store(): LockStore {
    return this.#store
  }

  /**
   * A lock on `key`. `ttl`: milliseconds, a duration string ('10s', '5m') or `null` for no expiry;
   * default 30 s. Creating a lock does not acquire it.
   */
  createLock(key: string, ttl?: Duration | null, options: CreateLockOptions = EMPTY_OPTIONS): Lock {
    validateKeyOrOwner(key, 'key')
    const owner = resolveOwner(options)
    return new Lock(key, owner, ttl === undefined ? this.#defaults.defaultTtl : toTtl(ttl), this.#shared)
  }

  /**
   * One permit of a counting semaphore on `key`: at most `limit` permits of the key are held at once, each
   * with its own lease (`ttl`, default the factory's `defaultTtl`). A permit is a Lock: acquire it, run with
   * it, release it. Needs a store with semaphores (`store.shared`), else throws `E_INVALID_ARGUMENT`.
   * Semaphore keys live apart from mutex keys.
   */
  createSemaphore(key: string, options: CreateSemaphoreOptions): Lock {
    validateKeyOrOwner(key, 'key')
    const { limit, ttl, ...rest } = validateOptions(options, 'createSemaphore')
    const checkedLimit = validateLimit(limit)
    const lease = ttl === undefined ? this.#defaults.defaultTtl : toTtl(ttl)
    const owner = resolveOwner(rest)
    return new Lock(key, owner, lease, this.#sharedContext('permit', checkedLimit))
  }

  /**
   * A read-write lock on `key`: `read` is shared with other readers, `write` excludes readers and writers.
   * Both are Locks with this `ttl` (default the factory's `defaultTtl`) and one owner id. Needs a store with
   * read-write locks (`store.shared`), else throws `E_INVALID_ARGUMENT`. A permit of a semaphore on the same
   * key counts as a reader.
   */
  createReadWriteLock(key: string, ttl?: Duration | null, options: CreateLockOptions = EMPTY_OPTIONS): ReadWriteLock {
    validateKeyOrOwner(key, 'key')
    const lease = ttl === undefined ? this.#defaults.defaultTtl : toTtl(ttl)
    const owner = resolveOwner(validateOptions(options, 'createReadWriteLock'))
    const read = new Lock(key, owner, lease, this.#sharedContext('read', null))
    const write = new Lock(key, owner, lease, this.#sharedContext('write', null))
    return Object.freeze({ key, read, write })
  }

  /**
   * The lock `lock.serialize()` described, as the same owner: it can release or extend the lock the
   * other process acquired. A permit comes back as a permit (same limit), a read or write side as that side.
   * Malformed input throws `E_INVALID_ARGUMENT`.
   */
  restoreLock(serialized: string): Lock {
    const state = parseSerializedLock(serialized)
    const context = state.kind === 'lock' ? this.#shared : this.#sharedContext(state.kind, state.limit)
    return new Lock(state.key, state.owner, state.ttl, context, {
      expiresAt: state.held ? state.expiresAt : undefined,
      fencingToken: state.fencingToken ?? undefined,
    })
  }

  #sharedContext(kind: Exclude<LockKind, 'lock'>, limit: number | null): LockShared {
    const id = kind === 'permit' ? (limit as number) : kind
    let context = this.#sharedContexts.get(id)
    if (context !== undefined) return context
    const shared = this.#store.shared
    if (shared === undefined) {
      const what = kind === 'permit' ? 'semaphores' : 'read-write locks'
      throw new E_INVALID_ARGUMENT(
        `${this.#shared.storeName} does not support ${what}: it has no "shared" store (see SharedLockStore)`,
      )
    }
    const store = sharedModeStore(shared, sharedModeOf(kind, limit))
    // Errors keep naming the real store, not the adapter.
    context = { ...this.#shared, store, kind, limit }
    this.#sharedContexts.set(id, context)
    return context
  }
}

function resolveOwner(options: CreateLockOptions): string {
  const owner = options.owner
  // A UUID is well-formed: only an owner given by the caller needs checking.
  if (owner === undefined || owner === null) return randomOwnerId()
  validateKeyOrOwner(owner, 'owner')
  return owner
}
