import { errors, type SharedLockStore, type SharedMode, type Unsubscribe, type WaitOptions } from '@verrou/core'
import type { SharedLockKeys } from './keys.js'
import { type AcquireReply, describeValue, parseAcquireReply, parseFlagReply, ttlArgument } from './replies.js'

/** The shared-lock scripts, by operation (their names also name the operation in storage errors). */
export type SharedLockScript =
  | 'acquire shared'
  | 'release shared'
  | 'extend shared'
  | 'force release shared'
  | 'check shared'
  | 'leave shared queue'

/** What the shared locks take from the store they belong to (ScriptedLockStore). */
export interface SharedScriptHost {
  /** Runs a script atomically: one round trip. */
  run(script: SharedLockScript, keys: string[], args: string[]): Promise<unknown>
  /** The store's eviction check; `undefined` once settled. */
  ready(): Promise<void> | undefined
  /** A failure as the store reports it (a storage error, our own errors as they are). */
  failure(error: unknown, operation: string, key: string): unknown
  keys(key: string): SharedLockKeys
  /** Where admitted waiters are named; '' names nobody. */
  channel(keys: SharedLockKeys): string
  /** The fencing counter's grace, in ms, as a script argument. */
  grace: string
  checkOwner(owner: string): string
  checkTtl(ttl: number | null): number | null
  checkPlaceLease(wait: WaitOptions): number
}

export type SharedSubscribe = (key: string, listener: (next?: string) => void) => Promise<Unsubscribe>

/**
 * Semaphores and read-write locks on Redis: one script per operation (shared_scripts.ts), so each is one
 * round trip and one atomic step on the server. Every reply is checked: a malformed one is a storage error.
 */
export class ScriptedSharedLockStore implements SharedLockStore {
  readonly #host: SharedScriptHost
  /** Only on a store that can subscribe (ioredis); Upstash over REST has none. */
  readonly subscribeToReleases?: SharedSubscribe

  constructor(host: SharedScriptHost, subscribe: SharedSubscribe | undefined) {
    this.#host = host
    if (subscribe !== undefined) this.subscribeToReleases = subscribe
  }

  async acquire(key: string, owner: string, mode: SharedMode, ttl: number | null, wait?: WaitOptions): Promise<AcquireReply> {
    const host = this.#host
    const keys = host.keys(key)
    const lease = wait === undefined ? '' : String(host.checkPlaceLease(wait))
    const args = [
      host.checkOwner(owner),
      modeArgument(mode),
      ttlArgument(host.checkTtl(ttl)),
      host.grace,
      lease,
      host.channel(keys),
    ]
    try {
      const checking = host.ready()
      if (checking !== undefined) await checking
      return parseAcquireReply(await host.run('acquire shared', keyList(keys), args), wait !== undefined)
    } catch (error) {
      throw host.failure(error, 'acquire shared', key)
    }
  }

  async release(key: string, owner: string, mode: SharedMode): Promise<boolean> {
    const host = this.#host
    const keys = host.keys(key)
    const args = [host.checkOwner(owner), exclusivityArgument(mode), host.grace, host.channel(keys)]
    return this.#flag('release shared', key, keys, args)
  }

  async extend(key: string, owner: string, mode: SharedMode, ttl: number | null): Promise<boolean> {
    const host = this.#host
    const keys = host.keys(key)
    const args = [host.checkOwner(owner), exclusivityArgument(mode), ttlArgument(host.checkTtl(ttl)), host.grace]
    return this.#flag('extend shared', key, keys, args)
  }

  async forceRelease(key: string, mode: SharedMode): Promise<void> {
    const host = this.#host
    const keys = host.keys(key)
    await this.#flag('force release shared', key, keys, [exclusivityArgument(mode), host.grace, host.channel(keys)], true)
  }

  async isLocked(key: string, mode: SharedMode): Promise<boolean> {
    return this.#flag('check shared', key, this.#host.keys(key), [modeArgument(mode)])
  }

  async leaveQueue(key: string, owner: string): Promise<void> {
    const host = this.#host
    const keys = host.keys(key)
    await this.#flag('leave shared queue', key, keys, [host.checkOwner(owner), host.channel(keys)])
  }

  /** Runs a script whose reply is 0 or 1 (only 1 when `always`). */
  async #flag(script: SharedLockScript, key: string, keys: SharedLockKeys, args: string[], always = false): Promise<boolean> {
    const host = this.#host
    try {
      const checking = host.ready()
      if (checking !== undefined) await checking
      const reply = await host.run(script, keyList(keys), args)
      if (always && reply !== 1) throw new Error(`unexpected reply to the ${script} script: ${describeValue(reply)}`)
      return parseFlagReply(reply, script)
    } catch (error) {
      throw host.failure(error, script, key)
    }
  }
}

/** The six keys every shared script takes, in the order shared_lua.ts expects. */
function keyList(keys: SharedLockKeys): string[] {
  return [keys.writer, keys.readers, keys.fence, keys.queue, keys.queueLeases, keys.queueModes]
}

/** `x`, `s`, or a shared request's limit: what the scripts and the queue's modes hold. */
function modeArgument(mode: SharedMode): string {
  if (exclusivityArgument(mode) === 'x') return 'x'
  const { limit } = mode
  if (limit === null) return 's'
  if (!(Number.isSafeInteger(limit) && limit > 0)) {
    throw new errors.E_INVALID_ARGUMENT(
      `A shared lock limit must be a positive whole number or null, got ${describeValue(limit)}`,
    )
  }
  return String(limit)
}

/** Release, extend and force release only look at exclusivity. */
function exclusivityArgument(mode: SharedMode): 'x' | 's' {
  const exclusive: unknown = mode !== null && typeof mode === 'object' ? mode.exclusive : undefined
  if (typeof exclusive !== 'boolean') {
    throw new errors.E_INVALID_ARGUMENT(`A shared lock mode must say whether it is exclusive, got ${describeValue(mode)}`)
  }
  return exclusive ? 'x' : 's'
}
