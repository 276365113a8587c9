/**
 * The backend of this example: a tiny key-value service with versioned compare-and-set and its own clock,
 * shaped like etcd, Consul or a KV store on an edge platform. A real driver would talk to such a service
 * over the network; here it lives in-process so the example runs anywhere.
 */
export interface Versioned<T> {
  value: T
  version: number
}

export class VersionedKv<T> {
  readonly #entries = new Map<string, Versioned<T>>()
  #nextVersion = 1
  /** Set to make every call fail, as an unreachable service would. */
  down = false

  /** The service's clock: the driver decides expiry with it, never with the caller's. */
  async now(): Promise<number> {
    this.#check()
    return performance.now()
  }

  async get(key: string): Promise<Versioned<T> | undefined> {
    this.#check()
    return this.#entries.get(key)
  }

  /** Writes `value` only if the entry is still at `expectedVersion` (0: absent). Returns the new version or null. */
  async compareAndSet(key: string, expectedVersion: number, value: T): Promise<number | null> {
    this.#check()
    const current = this.#entries.get(key)?.version ?? 0
    if (current !== expectedVersion) return null
    const version = this.#nextVersion++
    this.#entries.set(key, { value, version })
    return version
  }

  #check(): void {
    if (this.down) throw new Error('versioned-kv: connection refused')
  }
}
