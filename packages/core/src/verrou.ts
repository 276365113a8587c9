import { describeValue } from './describe_value.js'
import type { Duration } from './duration.js'
import { E_INVALID_ARGUMENT } from './errors.js'
import type { Lock } from './lock.js'
import {
  type CreateLockOptions,
  type CreateSemaphoreOptions,
  LockFactory,
  type LockFactoryOptions,
  type ReadWriteLock,
  validateStore,
} from './lock_factory.js'
import type { LockStore } from './store.js'

export interface StoreEntry {
  /** The store, e.g. `memoryStore()` or `redisStore({ connection })`. */
  driver: LockStore
}

export interface VerrouConfig<Stores extends Record<string, StoreEntry>> extends LockFactoryOptions {
  /** Name of the store `createLock` and `restoreLock` use. */
  default: keyof Stores & string
  stores: Stores
}

/**
 * Named stores with one default: every `LockFactory` method, on the default store or on `use(name)`.
 * The whole config is validated at construction, with the same checks and errors as `LockFactory`.
 */
export class Verrou<Stores extends Record<string, StoreEntry>> {
  readonly #default: keyof Stores & string
  readonly #factories = new Map<string, LockFactory>()

  constructor(config: VerrouConfig<Stores>) {
    if (config === null || typeof config !== 'object' || config.stores === null || typeof config.stores !== 'object') {
      throw new E_INVALID_ARGUMENT('Verrou needs a config with a "stores" object')
    }
    const { default: defaultName, stores, ...options } = config
    if (typeof defaultName !== 'string' || !Object.hasOwn(stores, defaultName)) {
      throw new E_INVALID_ARGUMENT(`The default store ${describeValue(defaultName)} is not one of the configured stores`)
    }
    for (const [name, entry] of Object.entries(stores)) {
      if (entry === null || typeof entry !== 'object') {
        throw new E_INVALID_ARGUMENT(`stores.${name} must be { driver: <a lock store> }, got ${describeValue(entry)}`)
      }
      validateStore(entry.driver, `stores.${name}.driver`)
      // Bad options throw here, at construction, exactly as LockFactory throws them.
      this.#factories.set(name, new LockFactory(entry.driver, options))
    }
    this.#default = defaultName
  }

  /** The factory of the named store. */
  use(name: keyof Stores & string): LockFactory {
    const factory = this.#factories.get(name)
    if (factory === undefined) {
      const known = [...this.#factories.keys()].join(', ')
      throw new E_INVALID_ARGUMENT(`Unknown lock store ${describeValue(name)} (configured: ${known})`)
    }
    return factory
  }

  /** `LockFactory.createLock` on the default store. */
  createLock(key: string, ttl?: Duration | null, options?: CreateLockOptions): Lock {
    return this.use(this.#default).createLock(key, ttl, options)
  }

  /** `LockFactory.createSemaphore` on the default store: one permit of a semaphore on `key`. */
  createSemaphore(key: string, options: CreateSemaphoreOptions): Lock {
    return this.use(this.#default).createSemaphore(key, options)
  }

  /** `LockFactory.createReadWriteLock` on the default store. */
  createReadWriteLock(key: string, ttl?: Duration | null, options?: CreateLockOptions): ReadWriteLock {
    return this.use(this.#default).createReadWriteLock(key, ttl, options)
  }

  /** `LockFactory.restoreLock` on the default store. */
  restoreLock(serialized: string): Lock {
    return this.use(this.#default).restoreLock(serialized)
  }
}
