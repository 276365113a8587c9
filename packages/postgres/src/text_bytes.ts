import { createHash } from 'node:crypto'

/** Marks the UTF-16 form of a string that is not well-formed Unicode; never the first byte of UTF-8. */
const UTF16_MARKER = 0xff
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
/** Keys up to this many characters travel as themselves in notifications; longer ones as their hash. */
const MAX_PLAIN_PAYLOAD_LENGTH = 512
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/

/**
 * The bytes a key or owner is stored as. Keys are bytea, not text, so that any JS string works: text
 * cannot hold NUL. Well-formed strings are their UTF-8 bytes (readable with `convert_from(key, 'UTF8')`);
 * a string with a lone surrogate has no UTF-8 form (Node would replace it with U+FFFD, making two keys
 * one), so it is stored as a marker byte and its UTF-16LE code units. Distinct strings never share bytes.
 */
export function toStoredBytes(text: string): Buffer {
  if (!LONE_SURROGATE.test(text)) return Buffer.from(text, 'utf8')
  return Buffer.concat([Buffer.from([UTF16_MARKER]), Buffer.from(text, 'utf16le')])
}

/** The string whose stored bytes are `bytes`: the inverse of {@link toStoredBytes}. */
export function fromStoredBytes(bytes: Buffer): string {
  if (bytes[0] === UTF16_MARKER) return bytes.subarray(1).toString('utf16le')
  return bytes.toString('utf8')
}

/**
 * The NOTIFY payload announcing the release of `key`. Payloads are text in the server's encoding and
 * limited to 8000 bytes, so only short printable-ASCII keys travel as themselves (valid in any encoding);
 * every other key is sent as the SHA-256 of its stored bytes. The prefixes keep the two forms apart.
 */
export function releasePayload(key: string): string {
  if (key.length <= MAX_PLAIN_PAYLOAD_LENGTH && PRINTABLE_ASCII.test(key)) return `k:${key}`
  return `h:${createHash('sha256').update(toStoredBytes(key)).digest('hex')}`
}

/**
 * The payload announcing waiters of the shared lock (semaphore, read-write lock) `key`: the mutex form with
 * an `s` in front, so the two kinds of keys never hear each other's announcements on the table's channel.
 */
export function sharedPayload(key: string): string {
  return `s${releasePayload(key)}`
}

/** A release handed the lock to the named waiter: the grant's token, and the place it was handed for. */
export interface HeardHandOver {
  token: string
  /** The heir's place, by its lease end (see `placeMark` in sql.ts). */
  mark: string
}

/**
 * Splits a notification into the key's payload and, when the store named the next waiter, its owner.
 * The statements append a newline (never part of a key's payload) and `x:<owner's bytes in hex>`; an owner
 * too long to travel comes as `h:<its hash>` and is left unnamed, as is a payload from an earlier release.
 * A release that handed the lock to that waiter puts `g:<token>:<place mark>:` before it.
 */
export function parseAnnouncement(payload: string): {
  keyPayload: string
  next: string | undefined
  handOver?: HeardHandOver
} {
  const newline = payload.indexOf('\n')
  if (newline === -1) return { keyPayload: payload, next: undefined }
  const keyPayload = payload.slice(0, newline)
  let named = payload.slice(newline + 1)
  const handed = /^g:([1-9][0-9]{0,18}):([0-9]{20}):/.exec(named)
  if (handed !== null) named = named.slice(handed[0].length)
  if (!named.startsWith('x:') || !/^(?:[0-9a-f]{2})+$/.test(named.slice(2))) return { keyPayload, next: undefined }
  const next = fromStoredBytes(Buffer.from(named.slice(2), 'hex'))
  if (handed === null) return { keyPayload, next }
  return { keyPayload, next, handOver: { token: handed[1]!, mark: handed[2]! } }
}
