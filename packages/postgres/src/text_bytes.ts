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

/**
 * The NOTIFY payload announcing the release of `key`. Payloads are text in the server's encoding and
 * limited to 8000 bytes, so only short printable-ASCII keys travel as themselves (valid in any encoding);
 * every other key is sent as the SHA-256 of its stored bytes. The prefixes keep the two forms apart.
 */
export function releasePayload(key: string): string {
  if (key.length <= MAX_PLAIN_PAYLOAD_LENGTH && PRINTABLE_ASCII.test(key)) return `k:${key}`
  return `h:${createHash('sha256').update(toStoredBytes(key)).digest('hex')}`
}
