import { type Duration, toMilliseconds, toTtl } from './duration.js'
import { E_INVALID_ARGUMENT } from './errors.js'
import { validateKey, validateOwner } from './key_and_owner.js'
import { Lock } from './lock.js'
import { type Logger, silentLogger } from './logger.js'
import { randomOwnerId } from './owner_id.js'
import { parseSerializedLock } from './serialized_lock.js'
import type { LockStore } from './store.js'
import { type RetryOptions, type RetryPolicy, resolveRetryPolicy } from './waiting.js'

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
const DEFAULT_OPERATION_TIMEOUT = 10_000

/** Creates and restores locks on one store. */
export class LockFactory {
  readonly #store: LockStore
  readonly #retry: RetryPolicy
  readonly #defaultTtl: number | null
  readonly #operationTimeout: number
  readonly #logger: Logger

  constructor(store: LockStore, options: LockFactoryOptions = {}) {
    if (store === null || typeof store !== 'object' || typeof store.acquire !== 'function') {
      throw new E_INVALID_ARGUMENT('LockFactory needs a lock store (an object implementing LockStore)')
    }
    this.#store = store
    this.#retry = resolveRetryPolicy(options.retry)
    this.#defaultTtl = options.defaultTtl === undefined ? DEFAULT_TTL : toTtl(options.defaultTtl, 'defaultTtl')
    this.#operationTimeout =
      options.operationTimeout === undefined
        ? DEFAULT_OPERATION_TIMEOUT
        : toMilliseconds(options.operationTimeout, 'operationTimeout', { allowInfinity: true })
    this.#logger = options.logger ?? silentLogger
  }

  /** The store this factory's locks live in. */
  get store(): LockStore {
    return this.#store
  }

  /**
   * A lock on `key`. `ttl`: milliseconds, a duration string ('10s', '5m') or `null` for no expiry;
   * default 30 s. Creating a lock does not acquire it.
   */
  createLock(key: string, ttl?: Duration | null, options: CreateLockOptions = {}): Lock {
    validateKey(key)
    const owner = options.owner ?? randomOwnerId()
    validateOwner(owner)
    return new Lock(key, {
      ...this.#lockDefaults(),
      owner,
      ttl: ttl === undefined ? this.#defaultTtl : toTtl(ttl),
    })
  }

  /**
   * The lock `lock.serialize()` described, as the same owner: it can release or extend the lock the
   * other process acquired. Malformed input throws `E_INVALID_ARGUMENT`.
   */
  restoreLock(serialized: string): Lock {
    const state = parseSerializedLock(serialized)
    return new Lock(state.key, {
      ...this.#lockDefaults(),
      owner: state.owner,
      ttl: state.ttl,
      expiresAt: state.held ? state.expiresAt : undefined,
      fencingToken: state.fencingToken ?? undefined,
    })
  }

  #lockDefaults() {
    return { store: this.#store, retry: this.#retry, logger: this.#logger, operationTimeout: this.#operationTimeout }
  }
}
