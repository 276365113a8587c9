import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { errors, type WaitOptions } from '@verrou/core'
import { errorName } from './table.js'

/** How this store's errors name it. */
export const STORE_NAME = 'DynamoDB lock store'

export const FENCING_TOKEN = 'fencingToken'

/**
 * Random id of the last write. Every write sets a new one, so it doubles as the item's version: a write
 * conditioned on the id it read applies only if nothing changed since. It also recognises our own write
 * when the SDK retried a request that had succeeded.
 */
export const LAST_WRITE = 'lastWrite'

/**
 * How long an item stays after its lease ends before DynamoDB's TTL may delete it. The fencing counter
 * lives on the item, so a deleted item restarts it from a clock-based floor (see `#tokenFloor`); this
 * margin is what keeps that floor above every earlier token even when clocks disagree by minutes.
 */
export const ITEM_RETENTION_MS = 60 * 60 * 1000

/**
 * The latest lease end the store writes, epoch ms: a lease past it (the contract accepts ttls up to 2^53-1
 * ms, so now + ttl can exceed what a double holds exactly) ends here instead, in the year 287,396.
 */
export const LATEST_LEASE_END = Number.MAX_SAFE_INTEGER

/**
 * The longest place lease the store writes. Release and extend lower the item's TTL to their own time plus
 * the hour of retention without reading the queue; capping places at half that hour keeps every live place
 * inside it (with clocks within `clockSkewAllowance`, itself far below half an hour), so DynamoDB never
 * deletes an item someone still waits on. Waiters renew their place every few hundred ms, far inside it.
 */
export const MAX_PLACE_LEASE_MS = ITEM_RETENTION_MS / 2

/** DynamoDB allows partition key values up to 2048 bytes of UTF-8. */
export const MAX_KEY_BYTES = 2048

/**
 * The item as it was when a condition failed (`{}` if there was none), or `undefined` when `error` is not
 * a failed condition. Only ConditionalCheckFailedException means "held by someone else" / "not owned".
 */
export function conditionFailure(error: unknown): Record<string, AttributeValue> | undefined {
  if (errorName(error) !== 'ConditionalCheckFailedException') return undefined
  const item = (error as { Item?: Record<string, AttributeValue> }).Item
  return item ?? {}
}

/** A condition that holds only while the item is exactly as read: no write since (every write sets a new id). */
export function lastWriteGuard(item: Record<string, AttributeValue>): {
  condition: string
  values: Record<string, AttributeValue>
} {
  const seen = item[LAST_WRITE]?.S
  return seen === undefined
    ? { condition: 'attribute_not_exists(#write)', values: {} }
    : { condition: '#write = :seen', values: { ':seen': { S: seen } } }
}

export function validatePlaceLease(wait: WaitOptions): void {
  if (wait === null || typeof wait !== 'object' || !Number.isSafeInteger(wait.lease) || wait.lease <= 0) {
    throw new errors.E_INVALID_ARGUMENT(`wait.lease must be a positive integer of milliseconds, got ${String(wait?.lease)}`)
  }
}

export function numberOf(value: AttributeValue | undefined): number | undefined {
  if (value?.N === undefined) return undefined
  const parsed = Number(value.N)
  return Number.isFinite(parsed) ? parsed : undefined
}

/** UTF-8 length without allocating: a lone surrogate counts as 3 bytes, like the replacement character. */
export function utf8Length(text: string): number {
  let bytes = 0
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && index + 1 < text.length) {
      const next = text.charCodeAt(index + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4
        index++
      } else bytes += 3
    } else bytes += 3
  }
  return bytes
}

/**
 * The partition key of a shared key's item is this prefix followed by the key. The table has no sort key
 * and a mutex key may be any string, so the mutex store refuses keys that start with it: the two kinds of
 * item never meet. A NUL byte first, so no readable key is refused.
 */
export const SHARED_KEY_PREFIX = '\u0000verrou:shared\u0000'
const SHARED_PREFIX_BYTES = utf8Length(SHARED_KEY_PREFIX)

/** The item key of shared key `key`, after checking that it fits DynamoDB's partition key limit. */
export function sharedItemKey(key: string): string {
  const limit = MAX_KEY_BYTES - SHARED_PREFIX_BYTES
  if (key.length * 3 > limit && utf8Length(key) > limit) {
    throw new errors.E_INVALID_ARGUMENT(`A DynamoDB semaphore or read-write lock key must be at most ${limit} bytes of UTF-8`)
  }
  return SHARED_KEY_PREFIX + key
}
