import { createHash } from 'node:crypto'

const LONE_SURROGATE = /\p{Cs}/u

/**
 * The bytes a key or owner is stored as: UTF-8, except that a lone surrogate (a JS string can hold one,
 * UTF-8 cannot) is written as its own three-byte sequence instead of U+FFFD. No valid UTF-8 contains those
 * sequences, so two different strings never share bytes, and so never share a lock.
 */
export function toBytes(text: string): Buffer {
  if (!LONE_SURROGATE.test(text)) return Buffer.from(text, 'utf8')
  const chunks: Buffer[] = []
  for (const char of text) {
    const code = char.codePointAt(0)!
    if (code >= 0xd800 && code <= 0xdfff) {
      chunks.push(Buffer.from([0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]))
    } else {
      chunks.push(Buffer.from(char, 'utf8'))
    }
  }
  return Buffer.concat(chunks)
}

/** The primary key of a lock row: fixed-size whatever the key's length, and compared byte for byte. */
export function keyHash(keyBytes: Buffer): Buffer {
  return createHash('sha256').update(keyBytes).digest()
}
