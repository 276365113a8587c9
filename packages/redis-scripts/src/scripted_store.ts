import {
  type AcquireResult,
  claimDelay,
  errors,
  HeardHandOvers,
  type LockStore,
  type Logger,
  PendingClaims,
  type SharedLockStore,
  type WaitOptions,
} from '@verrou/core'
import { consoleLogger, EVICTION_POLICY_ACTIONS, EvictionCheck, type EvictionPolicyAction } from './eviction.js'
import { type InboxMessage, readInboxMessage } from './inbox_message.js'
import {
  DEFAULT_PREFIX,
  invalidOwnerReason,
  invalidPrefixReason,
  type LockKeys,
  lockKey,
  lockKeys,
  releaseChannel,
  type SharedLockKeys,
  scriptKeys,
  sharedLockKeys,
} from './keys.js'
import { HEIR_INBOX_PREFIX } from './lua_helpers.js'
import { describeValue, parseAcquireReply, parseExistsReply, parseFlagReply, placeNumber, ttlArgument } from './replies.js'
import { ScriptedSharedLockStore, type SharedSubscribe } from './scripted_shared_store.js'
import { ACQUIRE_SCRIPT, EXTEND_SCRIPT, FORCE_RELEASE_SCRIPT, LEAVE_QUEUE_SCRIPT, RELEASE_SCRIPT } from './scripts.js'
import {
  SHARED_ACQUIRE_SCRIPT,
  SHARED_EXTEND_SCRIPT,
  SHARED_FORCE_RELEASE_SCRIPT,
  SHARED_IS_LOCKED_SCRIPT,
  SHARED_LEAVE_QUEUE_SCRIPT,
  SHARED_RELEASE_SCRIPT,
} from './shared_scripts.js'

/** The scripts, by the operation they carry out. */
export const LOCK_SCRIPTS = {
  acquire: ACQUIRE_SCRIPT,
  release: RELEASE_SCRIPT,
  extend: EXTEND_SCRIPT,
  'force release': FORCE_RELEASE_SCRIPT,
  'leave queue': LEAVE_QUEUE_SCRIPT,
  'acquire shared': SHARED_ACQUIRE_SCRIPT,
  'release shared': SHARED_RELEASE_SCRIPT,
  'extend shared': SHARED_EXTEND_SCRIPT,
  'force release shared': SHARED_FORCE_RELEASE_SCRIPT,
  'check shared': SHARED_IS_LOCKED_SCRIPT,
  'leave shared queue': SHARED_LEAVE_QUEUE_SCRIPT,
} as const

export type LockScript = keyof typeof LOCK_SCRIPTS

/** The options both Redis stores take besides their connection. */
export interface ScriptedStoreOptions {
  /** Prepended to every key the store writes (no `{` or `}`: the store places the hash tag). Default `verrou:`. */
  prefix?: string
  /**
   * Milliseconds a key's fencing counter outlives its lock (release, force release or lease end), so that
   * unused keys leave nothing behind. Default one hour; at least one second.
   */
  fencingCounterGrace?: number
  /** What to do on a server whose maxmemory-policy may evict keys. Default `'throw'`. */
  onEvictionPolicy?: EvictionPolicyAction
  /** Where the eviction warning goes (a pino-compatible logger). Default: `console`. */
  logger?: Logger
}

export const DEFAULT_FENCING_COUNTER_GRACE = 3_600_000
export const MIN_FENCING_COUNTER_GRACE = 1_000

/**
 * The lock operations @verrou/redis and @verrou/upstash share (upstash bundles this file): which script runs
 * with which keys and arguments, and how its reply is read. A subclass only says how a script and an EXISTS
 * reach its server, and where releases are announced. Any failure, including a reply of the wrong shape,
 * is a storage error: never "not acquired" or "not owned".
 *
 * A queueing store: each key has a FIFO queue of waiters on the server, kept by the same scripts (see
 * scripts.ts), so the lock goes to the longest live waiter across processes and nobody barges in. A store
 * with an inbox is handed locks: its waiter is told it holds the lock, and answered without a round trip.
 */
export abstract class ScriptedLockStore implements LockStore {
  readonly #prefix: string
  readonly #grace: string
  readonly #eviction: EvictionCheck

  /** How storage errors name this store, e.g. "Upstash lock store". */
  readonly #errorName: string
  /** The places of this store's waiters, for the hand-overs its inbox hears (see `readInbox`). */
  readonly #heirs = new HeardHandOvers()
  /** Claims of locks handed over, put off until a quarter of the claim window (see `claimDelay`). */
  readonly #claims = new PendingClaims()

  /**
   * Semaphores and read-write locks, through the same connection: keys under `<lock key>:shared:...`
   * (apart from the mutex's, in the same hash slot), one script per operation.
   */
  readonly shared: SharedLockStore

  /** `storeName` prefixes option errors (`redisStore: ...`); `errorName` begins storage errors. */
  constructor(storeName: string, errorName: string, options: ScriptedStoreOptions) {
    this.#errorName = errorName
    const { prefix = DEFAULT_PREFIX, fencingCounterGrace = DEFAULT_FENCING_COUNTER_GRACE, onEvictionPolicy = 'throw' } = options
    const reason = invalidPrefixReason(prefix)
    if (reason !== undefined) throw new errors.E_INVALID_ARGUMENT(`${storeName}: ${reason}`)
    if (!Number.isSafeInteger(fencingCounterGrace) || fencingCounterGrace < MIN_FENCING_COUNTER_GRACE) {
      throw new errors.E_INVALID_ARGUMENT(
        `${storeName}: fencingCounterGrace must be a whole number of milliseconds, at least ${MIN_FENCING_COUNTER_GRACE}, got ${describeValue(fencingCounterGrace)}`,
      )
    }
    if (!EVICTION_POLICY_ACTIONS.includes(onEvictionPolicy)) {
      throw new errors.E_INVALID_ARGUMENT(
        `${storeName}: onEvictionPolicy must be 'throw' or 'warn', got ${describeValue(onEvictionPolicy)}`,
      )
    }
    const { logger = consoleLogger } = options
    if (logger === null || typeof logger !== 'object' || typeof logger.warn !== 'function' || typeof logger.info !== 'function') {
      throw new errors.E_INVALID_ARGUMENT(`${storeName}: logger must be a pino-compatible logger`)
    }
    this.#prefix = prefix
    this.#grace = String(fencingCounterGrace)
    this.#eviction = new EvictionCheck({
      storeName,
      action: onEvictionPolicy,
      logger,
      readMemoryInfo: () => this.readMemoryInfo(),
    })
    this.shared = new ScriptedSharedLockStore(
      {
        run: (script, keys, args) => this.runScript(script, keys, args),
        ready: () => this.#eviction.ensure(),
        failure: (error, operation, key) => this.#failure(error, operation, key),
        keys: (key) => this.sharedLockKeys(key),
        channel: (keys) => this.releaseChannel(keys.channel),
        grace: this.#grace,
        checkOwner,
        checkTtl,
        checkPlaceLease,
      },
      this.sharedReleaseSubscription(options),
    )
  }

  /**
   * How listeners hear of the waiters a shared key admits (`shared.subscribeToReleases`), or `undefined`
   * for a store nobody can subscribe through. Called by the constructor with its options, before the
   * subclass's own fields exist: what it returns may use them only when called.
   */
  protected sharedReleaseSubscription(_options: ScriptedStoreOptions): SharedSubscribe | undefined {
    return undefined
  }

  /** Runs `script` atomically on the server: one round trip. */
  protected abstract runScript(script: LockScript, keys: string[], args: string[]): Promise<unknown>

  /** EXISTS on one key: one round trip. */
  protected abstract keyExists(key: string): Promise<unknown>

  /** `INFO memory` from every server holding locks. Asked once per store, before its first operation. */
  protected abstract readMemoryInfo(): Promise<unknown[]>

  /**
   * The channel this store's process listens on for its waiters on the key whose releases go to
   * `channel` (as `releaseChannel` gave it): the next waiter is told there (see `readInboxMessage`), and
   * nobody else is woken. '' to be told on the key's channel. A store whose inbox begins with
   * `verrou:heir:` is handed locks (see hand_over in lua_helpers.ts): it passes what its inbox hears to
   * `readInbox`.
   */
  protected inbox(_channel: string): string {
    return ''
  }

  /**
   * Reads what an inbox heard (see `readInboxMessage`): undefined if malformed. A hand-over is noted first,
   * so that the waiter's next attempt, woken by this message, is answered at once if it still holds the
   * place the message names.
   */
  protected readInbox(message: Uint8Array): InboxMessage | undefined {
    const told = readInboxMessage(message)
    if (told?.handOver !== undefined)
      this.#heirs.heard(told.channel, told.owner, String(told.handOver.place), told.handOver.token)
    return told
  }

  /** The channel the scripts announce the next waiter on: `channel`, or '' to announce nothing (a store nobody can subscribe through). */
  protected releaseChannel(channel: string): string {
    return channel
  }

  protected lockKeys(key: string): LockKeys {
    return lockKeys(this.#prefix, key)
  }

  protected sharedLockKeys(key: string): SharedLockKeys {
    return sharedLockKeys(this.#prefix, key)
  }

  /**
   * Takes the lock if it is free and no live waiter is ahead of `owner`. With `wait`, a refusal also
   * joins the queue (or keeps `owner`'s place there) for `wait.lease` ms and reports the position.
   */
  async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    const lease = wait === undefined ? '' : String(checkPlaceLease(wait))
    const lock = lockKey(this.#prefix, key)
    // Only a waiter has a place a release can hand the lock to, and an inbox. `channel`: where the scripts
    // announce this key's releases, as they are given it.
    const channel = wait === undefined ? '' : this.releaseChannel(releaseChannel(lock))
    const inbox = wait === undefined ? '' : this.inbox(channel)
    const args = [checkOwner(owner), ttlArgument(checkTtl(ttl)), this.#grace, lease, inbox]
    if (this.#heirs.size > 0 && wait !== undefined) {
      const handed = this.#heirs.take(channel, owner, performance.now())
      if (handed !== undefined) return this.#answerHandOver(key, owner, ttl, handed.token, handed.lease)
    }
    // Each operation awaits the script directly, no wrapper, and builds only the keys it sends: it runs on every call.
    try {
      const checking = this.#eviction.ensure()
      if (checking !== undefined) await checking
      const sentAt = wait === undefined ? 0 : performance.now()
      const reply = await this.runScript('acquire', scriptKeys(lock), args)
      const result = parseAcquireReply(reply, wait !== undefined, true)
      if (wait === undefined) return result
      if (!result.acquired && inbox.startsWith(HEIR_INBOX_PREFIX)) {
        this.#heirs.placed(channel, owner, sentAt, wait.lease, String(placeNumber(reply)))
      } else if (this.#heirs.size > 0) {
        this.#heirs.forget(channel, owner)
      }
      return result
    } catch (error) {
      throw this.#failure(error, 'acquire', key)
    }
  }

  /** A lock handed to `owner` with `token`, heard by the inbox: granted now, claimed for `ttl` later. */
  #answerHandOver(key: string, owner: string, ttl: number | null, token: number, lease: number): AcquireResult {
    const claimed = this.#claims.schedule(key, owner, claimDelay(ttl, lease), () => this.#claim(key, owner, ttl, token))
    // `Lock` always follows the claim; a caller of the store that does not must not crash the process.
    claimed.catch(() => {})
    return { acquired: true, fencingToken: token, handedOver: { lease, claimed } }
  }

  /** The extend script with the hand-over's token: counts only while no grant has followed that hand-over. */
  async #claim(key: string, owner: string, ttl: number | null, token: number): Promise<boolean> {
    const keys = this.lockKeys(key)
    try {
      await this.#eviction.ensure()
      const args = [owner, ttlArgument(ttl), this.#grace, String(token)]
      return parseFlagReply(await this.runScript('extend', [keys.lock, keys.fence], args), 'claim')
    } catch (error) {
      throw this.#failure(error, 'claim', key)
    }
  }

  async release(key: string, owner: string): Promise<boolean> {
    // A claim not sent yet never will be: the release ends (or hands on) the grant as it stands.
    this.#claims.cancel(key, owner)
    const lock = lockKey(this.#prefix, key)
    const args = [checkOwner(owner), this.releaseChannel(releaseChannel(lock)), this.#grace]
    try {
      const checking = this.#eviction.ensure()
      if (checking !== undefined) await checking
      return parseFlagReply(await this.runScript('release', scriptKeys(lock), args), 'release')
    } catch (error) {
      throw this.#failure(error, 'release', key)
    }
  }

  async extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    const keys = this.lockKeys(key)
    const args = [checkOwner(owner), ttlArgument(checkTtl(ttl)), this.#grace, '']
    try {
      const checking = this.#eviction.ensure()
      if (checking !== undefined) await checking
      return parseFlagReply(await this.runScript('extend', [keys.lock, keys.fence], args), 'extend')
    } catch (error) {
      throw this.#failure(error, 'extend', key)
    }
  }

  async forceRelease(key: string): Promise<void> {
    const keys = this.lockKeys(key)
    try {
      await this.#eviction.ensure()
      const reply = await this.runScript(
        'force release',
        [keys.lock, keys.fence, keys.queue, keys.queueLeases, keys.queueInboxes],
        [this.releaseChannel(keys.channel), this.#grace],
      )
      parseFlagReply(reply, 'force release')
    } catch (error) {
      throw this.#failure(error, 'force release', key)
    }
  }

  /**
   * Removes `owner`'s place in the queue of `key` (nothing happens if it has none). If it was first and
   * the lock is free, the next live waiter is announced. A lock handed to `owner`, unclaimed, is given back.
   */
  async leaveQueue(key: string, owner: string): Promise<void> {
    const keys = this.lockKeys(key)
    const args = [checkOwner(owner), this.releaseChannel(keys.channel), this.#grace]
    if (this.#heirs.size > 0) this.#heirs.forget(this.releaseChannel(keys.channel), owner)
    try {
      await this.#eviction.ensure()
      parseFlagReply(await this.runScript('leave queue', scriptKeys(keys.lock), args), 'leave queue')
    } catch (error) {
      throw this.#failure(error, 'leave queue', key)
    }
  }

  async isLocked(key: string): Promise<boolean> {
    try {
      await this.#eviction.ensure()
      return parseExistsReply(await this.keyExists(this.lockKeys(key).lock))
    } catch (error) {
      throw this.#failure(error, 'check', key)
    }
  }

  /** What a failure of `operation` is reported as: our own errors as they are, anything else as a storage error. */
  #failure(error: unknown, operation: string, key: string): unknown {
    return errors.isVerrouError(error)
      ? error
      : errors.E_LOCK_STORAGE_ERROR.from(error, { operation, key, store: this.#errorName })
  }
}

function checkOwner(owner: string): string {
  const reason = invalidOwnerReason(owner)
  if (reason !== undefined) throw new errors.E_INVALID_ARGUMENT(reason)
  return owner
}

function checkPlaceLease(wait: WaitOptions): number {
  const lease: unknown = wait !== null && typeof wait === 'object' ? wait.lease : undefined
  if (!(Number.isSafeInteger(lease) && (lease as number) > 0)) {
    throw new errors.E_INVALID_ARGUMENT(
      `A queue place lease (wait.lease) must be a positive whole number of milliseconds, got ${describeValue(lease)}`,
    )
  }
  return lease as number
}

/** The contract promises a positive integer or null; anything else must not reach a script as PX. */
function checkTtl(ttl: number | null): number | null {
  if (ttl !== null && !(Number.isSafeInteger(ttl) && ttl > 0)) {
    throw new errors.E_INVALID_ARGUMENT(`A lock ttl must be a positive whole number of milliseconds or null, got ${String(ttl)}`)
  }
  return ttl
}
