/**
 * Where a lock lives in Redis. Shared by @verrou/redis and @verrou/upstash (which bundles this file), so
 * both stores find the same locks under the same prefix.
 *
 * The lock key wraps the user's key in a hash tag: `verrou:{orders:42}`. Its fencing counter
 * (`verrou:{orders:42}:fence`) and its wait queue (`...:queue`, `...:queue:leases`, `...:queue:inboxes`) then hash to the same
 * Redis Cluster slot, which a script touching them all needs. A key starting with `}` (or with the escape `\`) gets a leading `\`: otherwise the tag would be
 * empty, Redis would hash the whole name, and the two keys could land on different slots.
 */

import { describeValue } from './replies.js'

export interface LockKeys {
  /** Holds the owner; its expiry is the lease. */
  lock: string
  /** The fencing counter: expires a grace after its lock; tokens still only grow (see scripts.ts). */
  fence: string
  /** The wait queue: a sorted set of waiting owners, scored by the order they joined in. */
  queue: string
  /** Each waiting owner's place lease: a sorted set scored by when the lease ends (ms, server clock). */
  queueLeases: string
  /** Each waiting owner's inbox, the channel its process listens on: a hash (only for stores that have one). */
  queueInboxes: string
  /** Where releases of this key are announced, naming the next waiter, when that waiter has no inbox. */
  channel: string
}

export const DEFAULT_PREFIX = 'verrou:'

/** Why `prefix` is unusable, or `undefined` if it is fine. */
export function invalidPrefixReason(prefix: unknown): string | undefined {
  if (typeof prefix !== 'string') return `prefix must be a string, got ${describeValue(prefix)}`
  // Braces would move or empty the hash tag the store places around the key.
  if (prefix.includes('{') || prefix.includes('}')) return `prefix must not contain "{" or "}", got ${JSON.stringify(prefix)}`
  return undefined
}

/** The key holding the lock: the one every other key of `key` is named after. */
export function lockKey(prefix: string, key: string): string {
  const tagged = key.startsWith('}') || key.startsWith('\\') ? `\\${key}` : key
  return `${prefix}{${tagged}}`
}

export function lockKeys(prefix: string, key: string): LockKeys {
  const lock = lockKey(prefix, key)
  const [, fence, queue, queueLeases, queueInboxes] = scriptKeys(lock)
  return { lock, fence, queue, queueLeases, queueInboxes, channel: releaseChannel(lock) }
}

/**
 * What the mutex scripts take as KEYS, in their order: lock, fence, queue, queue leases, queue inboxes.
 * Built from the lock key on every operation, without the rest of `LockKeys`.
 */
export function scriptKeys(lock: string): [string, string, string, string, string] {
  return [lock, `${lock}:fence`, `${lock}:queue`, `${lock}:queue:leases`, `${lock}:queue:inboxes`]
}

export function releaseChannel(lock: string): string {
  return `${lock}:released`
}

/**
 * Where a semaphore or read-write lock lives. Every key sits in the same hash tag as the mutex keys of
 * `key` (one Cluster slot per shared key) but under `:shared:...`: each mutex key ends in `}` or in `}`
 * followed by one of its own suffixes, each of these in `}:shared:` and a suffix, so no name is both.
 */
export interface SharedLockKeys {
  /** The exclusive holder (a writer): its owner, expiring with its lease, as a mutex lock is kept. */
  writer: string
  /** Shared holders (readers, permits): a sorted set of owners scored by lease end (ms, server clock; +inf: none). */
  readers: string
  /** The fencing counter of the shared key, kept apart from the mutex's. */
  fence: string
  /** The wait queue's order: owners scored by the number they joined with (FIFO). */
  queue: string
  /** Each waiting owner's place lease: owners scored by when it ends (ms, server clock). */
  queueLeases: string
  /** Each waiting owner's mode: `x` (exclusive), `s` (shared, no limit) or the limit of a shared request. */
  queueModes: string
  /** Where the waiters the grant rule admits are announced, one message per owner. */
  channel: string
}

export function sharedLockKeys(prefix: string, key: string): SharedLockKeys {
  const base = `${lockKeys(prefix, key).lock}:shared`
  return {
    writer: `${base}:writer`,
    readers: `${base}:readers`,
    fence: `${base}:fence`,
    queue: `${base}:queue`,
    queueLeases: `${base}:queue:leases`,
    queueModes: `${base}:queue:modes`,
    channel: `${base}:released`,
  }
}

/** A surrogate half without its partner: not encodable as UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Why `owner` cannot be stored faithfully, or `undefined`. Redis stores UTF-8, where every lone surrogate
 * becomes U+FFFD: two different owners would then compare equal, and one could release the other's lock.
 */
export function invalidOwnerReason(owner: string): string | undefined {
  return LONE_SURROGATE.test(owner) ? 'A lock owner must be well-formed Unicode (it contains a lone surrogate)' : undefined
}
