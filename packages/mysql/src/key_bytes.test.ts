import { describe, expect, test } from 'vitest'
import { keyHash, toBytes } from './key_bytes.js'

describe('toBytes', () => {
  test('well-formed text is plain UTF-8', () => {
    for (const text of ['plain', 'Ünïcødé', '🔒 lock', 'a\u0000b', "'; DROP TABLE x; --"]) {
      expect(toBytes(text).equals(Buffer.from(text, 'utf8'))).toBe(true)
    }
  })

  test('lone surrogates keep distinct bytes instead of collapsing into U+FFFD', () => {
    const texts = ['\uD800', '\uDBFF', '\uDC00', '\uDFFF', '\uFFFD', 'x\uD800', '\uD800x', '\uD83D\uDD12', '\uDD12\uD83D']
    const encoded = texts.map((text) => toBytes(text).toString('hex'))
    expect(new Set(encoded).size).toBe(texts.length)
    // A valid pair is still the usual 4-byte UTF-8.
    expect(toBytes('\uD83D\uDD12').equals(Buffer.from('🔒', 'utf8'))).toBe(true)
    expect(toBytes('\uD800').toString('hex')).toBe('eda080')
  })
})

describe('keyHash', () => {
  test('is 32 bytes and differs for keys that differ only by case or trailing space', () => {
    const hashes = ['Foo', 'foo', 'foo ', 'FOO'].map((key) => keyHash(toBytes(key)))
    for (const hash of hashes) expect(hash.length).toBe(32)
    expect(new Set(hashes.map((hash) => hash.toString('hex'))).size).toBe(4)
  })
})
