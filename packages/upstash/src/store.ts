import type { Redis } from '@upstash/redis'
import { errors } from '@verrou/core'
// One source of truth for both Redis stores, a private workspace package that tsup bundles into dist.
import { LOCK_SCRIPTS, type LockScript, ScriptedLockStore, type ScriptedStoreOptions } from '@verrou/redis-scripts'

/** What the store uses of an `@upstash/redis` client: any of its `Redis` classes (Node, Cloudflare, Fastly) fits. */
export type UpstashConnection = Pick<Redis, 'eval' | 'evalsha' | 'exists'>

export interface UpstashStoreOptions extends ScriptedStoreOptions {
  /** An `@upstash/redis` `Redis` client; auto-pipelining and automatic deserialisation may be on or off. */
  connection: UpstashConnection
}

/** INFO through EVAL, so the store needs no client method beyond the ones it already uses. */
const MEMORY_INFO_SCRIPT = "return redis.call('INFO', 'memory')"

/** Each script's SHA-1, computed once with Web Crypto: available on Node, Deno, Bun and edge runtimes alike. */
const scriptShas = new Map<LockScript, Promise<string>>()

function sha1(script: LockScript): Promise<string> {
  let sha = scriptShas.get(script)
  if (sha === undefined) {
    sha = globalThis.crypto.subtle.digest('SHA-1', new TextEncoder().encode(LOCK_SCRIPTS[script])).then((digest) => {
      let hex = ''
      for (const byte of new Uint8Array(digest)) hex += byte.toString(16).padStart(2, '0')
      return hex
    })
    scriptShas.set(script, sha)
  }
  return sha
}

/**
 * Locks in Upstash Redis over its REST API: the same atomic scripts, key layout and FIFO wait queue as
 * @verrou/redis, one HTTP request per operation, nothing that needs a long-lived process. A REST client
 * cannot hold a subscription, so nothing is published: the first waiter in the queue polls briefly, the
 * others at their retry delay (or until the holder's lease ends, if sooner). Semaphores and read-write
 * locks (`shared`) work the same way: one script, one request per operation, no announcements.
 */
export class UpstashStore extends ScriptedLockStore {
  readonly #connection: UpstashConnection

  constructor(options: UpstashStoreOptions) {
    if (options === null || typeof options !== 'object') {
      throw new errors.E_INVALID_ARGUMENT('upstashStore needs an options object with a connection')
    }
    const { connection } = options
    if (connection === null || typeof connection !== 'object' || typeof connection.evalsha !== 'function') {
      throw new errors.E_INVALID_ARGUMENT('upstashStore needs `connection`: a Redis client from @upstash/redis')
    }
    super('upstashStore', 'Upstash lock store', options)
    this.#connection = connection
  }

  /** Nobody can subscribe over REST, so announcing waiters (mutex or shared) would be wasted work. */
  protected override releaseChannel(_channel: string): string {
    return ''
  }

  protected keyExists(key: string): Promise<unknown> {
    return this.#connection.exists(key)
  }

  protected async readMemoryInfo(): Promise<unknown[]> {
    return [await this.#connection.eval(MEMORY_INFO_SCRIPT, [], [])]
  }

  /**
   * One script call: EVALSHA, or EVAL when the database has not seen the script yet. Every argument is a
   * string and every reply an integer or an array of integers, so the client's JSON deserialisation has
   * nothing to reinterpret (an owner such as "007" is never read back).
   */
  protected async runScript(script: LockScript, keys: string[], args: string[]): Promise<unknown> {
    const connection = this.#connection
    try {
      return await connection.evalsha(await sha1(script), keys, args)
    } catch (error) {
      if (!isNoScript(error)) throw error
      return await connection.eval(LOCK_SCRIPTS[script], keys, args)
    }
  }
}

/**
 * The client words a NOSCRIPT reply "NOSCRIPT ..." on its own and "Command failed: NOSCRIPT ..." through
 * auto-pipelining. Anchored, so an argument echoed back in some other error cannot match.
 */
function isNoScript(error: unknown): boolean {
  return error instanceof Error && /^(?:Command failed: )?NOSCRIPT\b/.test(error.message)
}

/** A lock store on Upstash Redis (REST). Safe for serverless and edge functions. */
export function upstashStore(options: UpstashStoreOptions): UpstashStore {
  return new UpstashStore(options)
}
