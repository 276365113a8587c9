import type { Duration } from './duration.js'
import { describeValue, E_INVALID_ARGUMENT } from './errors.js'
import type { Lock } from './lock.js'
import { type CreateLockOptions, LockFactory, type LockFactoryOptions } from './lock_factory.js'
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

/** Named stores with one default: every `LockFactory` method, on the default store or on `use(name)`. */
export class Verrou<Stores extends Record<string, StoreEntry>> {
  readonly #config: VerrouConfig<Stores>
  readonly #factories = new Map<keyof Stores, LockFactory>()

  constructor(config: VerrouConfig<Stores>) {
    if (config === null || typeof config !== 'object' || config.stores === null || typeof config.stores !== 'object') {
      throw new E_INVALID_ARGUMENT('Verrou needs a config with a "stores" object')
    }
    if (!Object.hasOwn(config.stores, config.default)) {
      throw new E_INVALID_ARGUMENT(`The default store ${describeValue(config.default)} is not one of the configured stores`)
    }
    this.#config = config
  }

  /** The factory of the named store (created once, then reused). */
  use(name: keyof Stores & string): LockFactory {
    const cached = this.#factories.get(name)
    if (cached) return cached
    if (!Object.hasOwn(this.#config.stores, name)) {
      const known = Object.keys(this.#config.stores).join(', ')
      throw new E_INVALID_ARGUMENT(`Unknown lock store ${describeValue(name)} (configured: ${known})`)
    }
    const { default: _default, stores, ...options } = this.#config
    const factory = new LockFactory(stores[name]!.driver, options)
    this.#factories.set(name, factory)
    return factory
  }

  /** `LockFactory.createLock` on the default store. */
  createLock(key: string, ttl?: Duration | null, options?: CreateLockOptions): Lock {
    return this.use(this.#config.default).createLock(key, ttl, options)
  }

  /** `LockFactory.restoreLock` on the default store. */
  restoreLock(serialized: string): Lock {
    return this.use(this.#config.default).restoreLock(serialized)
  }
}
