import type { Redis } from '@upstash/redis'
import { type AcquireResult, errors, type LockStore } from '@verrou/core'
// One source of truth for both Redis stores; tsup bundles these two dependency-free files into dist.
import { DEFAULT_PREFIX, invalidOwnerReason, invalidPrefixReason, type LockKeys, lockKeys } from '../../redis/src/keys.js'
import {
  ACQUIRE_SCRIPT,
  EXTEND_SCRIPT,
  FORCE_RELEASE_SCRIPT,
  parseAcquireReply,
  parseExistsReply,
  parseFlagReply,
  RELEASE_SCRIPT,
  ttlArgument,
} from '../../redis/src/scripts.js'

/** What the store uses of an `@upstash/redis` client: any of its `Redis` classes (Node, Cloudflare, Fastly) fits. */
export type UpstashConnection = Pick<Redis, 'eval' | 'evalsha' | 'exists'>

export interface UpstashStoreOptions {
  /** An `@upstash/redis` `Redis` client; auto-pipelining and automatic deserialisation may be on or off. */
  connection: UpstashConnection
  /** Prepended to every key the store writes (no `{` or `}`). Default `verrou:`; same layout as @verrou/redis. */
  prefix?: string
}

interface Script {
  lua: string
  /** Computed once, with Web Crypto: available on Node, Deno, Bun and edge runtimes alike. */
  sha: Promise<string> | undefined
}

const acquireScript: Script = { lua: ACQUIRE_SCRIPT, sha: undefined }
const releaseScript: Script = { lua: RELEASE_SCRIPT, sha: undefined }
const extendScript: Script = { lua: EXTEND_SCRIPT, sha: undefined }
const forceReleaseScript: Script = { lua: FORCE_RELEASE_SCRIPT, sha: undefined }

function sha1(script: Script): Promise<string> {
  script.sha ??= globalThis.crypto.subtle.digest('SHA-1', new TextEncoder().encode(script.lua)).then((digest) => {
    let hex = ''
    for (const byte of new Uint8Array(digest)) hex += byte.toString(16).padStart(2, '0')
    return hex
  })
  return script.sha
}

/**
 * Locks in Upstash Redis over its REST API: the same atomic scripts and key layout as @verrou/redis, one
 * HTTP request per operation, nothing that needs a long-lived process. A REST client cannot hold a
 * subscription, so waiters poll (their retry delay, or until the holder's lease ends if sooner).
 */
export class UpstashStore implements LockStore {
  readonly #connection: UpstashConnection
  readonly #prefix: string

  constructor(options: UpstashStoreOptions) {
    if (options === null || typeof options !== 'object') {
      throw new errors.E_INVALID_ARGUMENT('upstashStore needs an options object with a connection')
    }
    const { connection, prefix = DEFAULT_PREFIX } = options
    if (connection === null || typeof connection !== 'object' || typeof connection.evalsha !== 'function') {
      throw new errors.E_INVALID_ARGUMENT('upstashStore needs `connection`: a Redis client from @upstash/redis')
    }
    const reason = invalidPrefixReason(prefix)
    if (reason !== undefined) throw new errors.E_INVALID_ARGUMENT(`upstashStore: ${reason}`)
    this.#connection = connection
    this.#prefix = prefix
  }

  async acquire(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    const keys = this.#keys(key)
    const reply = await this.#run(
      'acquire',
      key,
      acquireScript,
      [keys.lock, keys.fence],
      [checkOwner(owner), ttlArgument(checkTtl(ttl))],
    )
    return parse('acquire', key, () => parseAcquireReply(reply))
  }

  async release(key: string, owner: string): Promise<boolean> {
    // '' as the channel: nobody can subscribe over REST, so announcing would be wasted work.
    const reply = await this.#run('release', key, releaseScript, [this.#keys(key).lock], [checkOwner(owner), ''])
    return parse('release', key, () => parseFlagReply(reply, 'release'))
  }

  async extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    const reply = await this.#run(
      'extend',
      key,
      extendScript,
      [this.#keys(key).lock],
      [checkOwner(owner), ttlArgument(checkTtl(ttl))],
    )
    return parse('extend', key, () => parseFlagReply(reply, 'extend'))
  }

  async forceRelease(key: string): Promise<void> {
    await this.#run('force release', key, forceReleaseScript, [this.#keys(key).lock], [''])
  }

  async isLocked(key: string): Promise<boolean> {
    let reply: unknown
    try {
      reply = await this.#connection.exists(this.#keys(key).lock)
    } catch (error) {
      throw errors.toStorageError(error, 'check', key)
    }
    return parse('check', key, () => parseExistsReply(reply))
  }

  #keys(key: string): LockKeys {
    return lockKeys(this.#prefix, key)
  }

  /**
   * One script call: EVALSHA, or EVAL when the database has not seen the script yet. Every argument is a
   * string and every reply an integer or an array of integers, so the client's JSON deserialisation has
   * nothing to reinterpret (an owner such as "007" is never read back).
   */
  async #run(operation: string, key: string, script: Script, keys: string[], args: string[]): Promise<unknown> {
    const connection = this.#connection
    try {
      const sha = await sha1(script)
      try {
        return await connection.evalsha(sha, keys, args)
      } catch (error) {
        if (!isNoScript(error)) throw error
        return await connection.eval(script.lua, keys, args)
      }
    } catch (error) {
      throw errors.toStorageError(error, operation, key)
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

function parse<T>(operation: string, key: string, read: () => T): T {
  try {
    return read()
  } catch (error) {
    throw errors.toStorageError(error, operation, key)
  }
}

function checkOwner(owner: string): string {
  const reason = invalidOwnerReason(owner)
  if (reason !== undefined) throw new errors.E_INVALID_ARGUMENT(reason)
  return owner
}

/** The contract promises a positive integer or null; anything else must not reach a script as PX. */
function checkTtl(ttl: number | null): number | null {
  if (ttl !== null && !(Number.isSafeInteger(ttl) && ttl > 0)) {
    throw new errors.E_INVALID_ARGUMENT(`A lock ttl must be a positive whole number of milliseconds or null, got ${String(ttl)}`)
  }
  return ttl
}

/** A lock store on Upstash Redis (REST). Safe for serverless and edge functions. */
export function upstashStore(options: UpstashStoreOptions): UpstashStore {
  return new UpstashStore(options)
}
