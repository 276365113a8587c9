/**
 * Where a lock lives in Redis. Shared by @verrou/redis and @verrou/upstash (which bundles this file), so
 * both stores find the same locks under the same prefix.
 *
 * The lock key wraps the user's key in a hash tag: `verrou:{orders:42}`. Its fencing counter,
 * `verrou:{orders:42}:fence`, then hashes to the same Redis Cluster slot, which a script touching both
 * needs. A key starting with `}` (or with the escape `\`) gets a leading `\`: otherwise the tag would be
 * empty, Redis would hash the whole name, and the two keys could land on different slots.
 */

export interface LockKeys {
  /** Holds the owner; its expiry is the lease. */
  lock: string
  /** The fencing counter: never expires, never deleted, so tokens only grow. */
  fence: string
  /** Where releases of this key are announced. */
  channel: string
}

export const DEFAULT_PREFIX = 'verrou:'

/** Why `prefix` is unusable, or `undefined` if it is fine. */
export function invalidPrefixReason(prefix: unknown): string | undefined {
  if (typeof prefix !== 'string') return `prefix must be a string, got ${String(prefix)}`
  // Braces would move or empty the hash tag the store places around the key.
  if (prefix.includes('{') || prefix.includes('}')) return `prefix must not contain "{" or "}", got ${JSON.stringify(prefix)}`
  return undefined
}

export function lockKeys(prefix: string, key: string): LockKeys {
  const tagged = key.startsWith('}') || key.startsWith('\\') ? `\\${key}` : key
  const lock = `${prefix}{${tagged}}`
  return { lock, fence: `${lock}:fence`, channel: `${lock}:released` }
}
