import type { Redis } from '@upstash/redis'
import { errors, type Unsubscribe } from '@verrou/core'
// One source of truth for both Redis stores, a private workspace package that tsup bundles into dist.
import {
  HEIR_INBOX_PREFIX,
  LOCK_SCRIPTS,
  type LockScript,
  ScriptedLockStore,
  type ScriptedStoreOptions,
  type SharedSubscribe,
} from '@verrou/redis-scripts'
import { ReleaseSubscriptions, type UpstashSubscriber } from './release_subscriptions.js'
import { streamChannel } from './stream_channel.js'

/**
 * What the store uses of an `@upstash/redis` client: any of its `Redis` classes (Node, Cloudflare, Fastly)
 * fits. `subscribe` (newer clients) lets waiters hear releases; without it they poll. Typed loosely, so
 * that these types compile against clients that predate it; what it returns is checked when called.
 */
export type UpstashConnection = Pick<Redis, 'eval' | 'evalsha' | 'exists'> & { subscribe?: (channels: string[]) => unknown }

export interface UpstashStoreOptions extends ScriptedStoreOptions {
  /** An `@upstash/redis` `Redis` client; auto-pipelining and automatic deserialisation may be on or off. */
  connection: UpstashConnection
  /**
   * Announce each release to the next waiter over an event stream (`redis.subscribe`), so it asks at once
   * instead of polling. Default `true` when the client has `subscribe`; `false` keeps every request short
   * (a platform that limits open requests), and waiters then poll.
   */
  releaseNotifications?: boolean
}

/** Whether a store with `options` announces releases (and its waiters subscribe). */
function announces(options: UpstashStoreOptions): boolean {
  if (options.releaseNotifications !== undefined && typeof options.releaseNotifications !== 'boolean') {
    throw new errors.E_INVALID_ARGUMENT('upstashStore: releaseNotifications must be a boolean')
  }
  return options.releaseNotifications !== false && typeof options.connection.subscribe === 'function'
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
 * @verrou/redis, one HTTP request per operation, nothing that needs a long-lived process. A release is
 * announced to the first live waiter only, which hears it over an event stream opened while it waits
 * (`redis.subscribe`); with a client that cannot subscribe, or `releaseNotifications: false`, nothing is
 * published and waiters pace their polls by the queue instead. Semaphores and read-write locks (`shared`)
 * work the same way.
 */
export class UpstashStore extends ScriptedLockStore {
  readonly #connection: UpstashConnection
  readonly #subscriptions: ReleaseSubscriptions | undefined

  /**
   * Present when releases are announced: calls `listener(next)` whenever `key` is released or
   * force-released while a live waiter is queued (`next`: that waiter's owner id), or when the first
   * waiter leaves the queue of a free lock. One event stream per key and process, shared by its listeners:
   * on the key's inbox, which this store's waiters record with their places, so that a release can hand
   * the lock straight to them (see `inbox`).
   */
  declare readonly subscribeToReleases?: (key: string, listener: (next?: string) => void) => Promise<Unsubscribe>

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
    if (announces(options)) {
      const subscriptions = new ReleaseSubscriptions((channels) => connection.subscribe!(channels) as UpstashSubscriber)
      this.#subscriptions = subscriptions
      this.subscribeToReleases = (key, listener) => {
        const inbox = this.inbox(streamChannel(this.lockKeys(key).channel))
        return subscriptions.listen(inbox, key, listener, (channel, heard, message) =>
          this.#ownerFromEvent(channel, heard, message),
        )
      }
    }
  }

  /**
   * Where the scripts announce (mutex or shared): a channel the client can put in a URL path as it is.
   * Nobody listens without announcements, so then the scripts publish nothing.
   */
  protected override releaseChannel(channel: string): string {
    return this.#subscriptions === undefined ? '' : streamChannel(channel)
  }

  /**
   * A key's inbox, where the scripts tell this store's waiters on that key (one event stream per key, as
   * before): `verrou:heir:` and the key's channel. Its prefix tells the scripts that this store reads
   * hand-overs. None without announcements: nobody would hear it.
   */
  protected override inbox(channel: string): string {
    return channel === '' ? '' : `${HEIR_INBOX_PREFIX}${channel}`
  }

  /**
   * Reads what a key's inbox heard: an announcement or a hand-over (taken note of before the waiter is
   * woken, so that its attempt finds it), naming the waiter it is for. The client may have decoded a
   * message as JSON, but these never read as JSON: they begin with digits and a `:` or `,`.
   */
  #ownerFromEvent(channel: string, heard: string, message: unknown): string | undefined {
    if (heard !== channel || typeof message !== 'string') return undefined
    return this.readInbox(new TextEncoder().encode(message))?.owner
  }

  /** Called by the base constructor, before `#subscriptions` exists: decides from the options alone. */
  protected override sharedReleaseSubscription(options: ScriptedStoreOptions): SharedSubscribe | undefined {
    if (!announces(options as UpstashStoreOptions)) return undefined
    return (key, listener) => this.#subscriptions!.listen(streamChannel(this.sharedLockKeys(key).channel), key, listener)
  }

  /** Ends the event streams the store opened, if any. Your client needs no closing. */
  async close(): Promise<void> {
    this.#subscriptions?.close()
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
