import { describeValue } from './describe_value.js'
import { type Duration, toMilliseconds, toTtl } from './duration.js'
import { E_INVALID_ARGUMENT } from './errors.js'
import { validateKeyOrOwner } from './key_and_owner.js'
import { Lock, type LockShared } from './lock.js'
import { type Logger, silentLogger } from './logger.js'
import { randomOwnerId } from './owner_id.js'
import { type RetryOptions, type RetryPolicy, resolveRetryPolicy } from './retry_policy.js'
import { parseSerializedLock } from './serialized_lock.js'
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

  constructor(store: LockStore, options: LockFactoryOptions = {}) {
    validateStore(store, 'The LockFactory store')
    this.#store = store
    this.#defaults = resolveFactoryOptions(options)
    const { retry, logger, operationTimeout } = this.#defaults
    this.#shared = { ...storeContext(store, logger, operationTimeout), retry }
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
    let owner = options.owner
    if (owner === undefined || owner === null) {
      // A UUID is well-formed: only an owner given by the caller needs checking.
      owner = randomOwnerId()
    } else {
      validateKeyOrOwner(owner, 'owner')
    }
    return new Lock(key, owner, ttl === undefined ? this.#defaults.defaultTtl : toTtl(ttl), this.#shared)
  }

  /**
   * The lock `lock.serialize()` described, as the same owner: it can release or extend the lock the
   * other process acquired. Malformed input throws `E_INVALID_ARGUMENT`.
   */
  restoreLock(serialized: string): Lock {
    const state = parseSerializedLock(serialized)
    return new Lock(state.key, state.owner, state.ttl, this.#shared, {
      expiresAt: state.held ? state.expiresAt : undefined,
      fencingToken: state.fencingToken ?? undefined,
    })
  }
}
