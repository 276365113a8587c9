import { describe, expect, test } from 'vitest'
import { invalidPrefixReason, lockKeys } from './keys.js'

/** The part of a key Redis Cluster hashes: the first non-empty {...}, else the whole key. */
function hashTag(key: string): string {
  const open = key.indexOf('{')
  if (open === -1) return key
  const close = key.indexOf('}', open + 1)
  if (close === -1 || close === open + 1) return key
  return key.slice(open + 1, close)
}

describe('lock key layout', () => {
  test('the key is wrapped in a hash tag after the prefix', () => {
    expect(lockKeys('verrou:', 'orders:42')).toEqual({
      lock: 'verrou:{orders:42}',
      fence: 'verrou:{orders:42}:fence',
      queue: 'verrou:{orders:42}:queue',
      queueLeases: 'verrou:{orders:42}:queue:leases',
      channel: 'verrou:{orders:42}:released',
    })
  })

  test.each(['plain', '}leading-brace', '{inner}', 'a}b', '{}', '}', '\\', '\\}x', '{', 'x{y}z', '🔒 ünïcode'])(
    'lock, fence and queue of %j share a non-empty hash tag, so one Cluster slot',
    (key) => {
      const { lock, fence, queue, queueLeases } = lockKeys('verrou:', key)
      const tag = hashTag(lock)
      expect(tag).not.toBe(lock)
      expect(tag.length).toBeGreaterThan(0)
      expect(hashTag(fence)).toBe(tag)
      expect(hashTag(queue)).toBe(tag)
      expect(hashTag(queueLeases)).toBe(tag)
    },
  )

  test('distinct keys never share a lock key, even where one had to be escaped', () => {
    const keys = ['}a', '\\}a', '\\\\}a', 'a', '\\a', '\\\\a', '}', '\\}', '\\']
    const locks = keys.map((key) => lockKeys('p:', key).lock)
    expect(new Set(locks).size).toBe(keys.length)
  })

  test('a lock key never equals another key’s fence key', () => {
    // Lock keys end with "}", fence keys with ":fence".
    expect(lockKeys('p:', 'x}:fence').lock).not.toBe(lockKeys('p:', 'x').fence)
  })

  test('prefixes with braces are refused (they would move the hash tag)', () => {
    expect(invalidPrefixReason('app:')).toBeUndefined()
    expect(invalidPrefixReason('')).toBeUndefined()
    expect(invalidPrefixReason('{app}:')).toMatch(/must not contain/)
    expect(invalidPrefixReason('app}')).toMatch(/must not contain/)
    expect(invalidPrefixReason(42)).toMatch(/must be a string/)
  })
})
