import { describe, expect, test } from 'vitest'
import { invalidPrefixReason, lockKey, lockKeys, releaseChannel, scriptKeys, sharedLockKeys } from './keys.js'

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
      queueInboxes: 'verrou:{orders:42}:queue:inboxes',
      channel: 'verrou:{orders:42}:released',
    })
  })

  test.each(['orders:42', '}x', '\\', '{}'])(
    "the hot path builds the same names as lockKeys, in the scripts' KEYS order (%j)",
    (key) => {
      const keys = lockKeys('verrou:', key)
      const lock = lockKey('verrou:', key)
      expect(lock).toBe(keys.lock)
      expect(scriptKeys(lock)).toEqual([keys.lock, keys.fence, keys.queue, keys.queueLeases, keys.queueInboxes])
      expect(releaseChannel(lock)).toBe(keys.channel)
    },
  )

  test.each(['plain', '}leading-brace', '{inner}', 'a}b', '{}', '}', '\\', '\\}x', '{', 'x{y}z', '🔒 ünïcode'])(
    'lock, fence and queue of %j share a non-empty hash tag, so one Cluster slot',
    (key) => {
      const { lock, fence, queue, queueLeases, queueInboxes } = lockKeys('verrou:', key)
      const tag = hashTag(lock)
      expect(tag).not.toBe(lock)
      expect(tag.length).toBeGreaterThan(0)
      expect(hashTag(fence)).toBe(tag)
      expect(hashTag(queue)).toBe(tag)
      expect(hashTag(queueLeases)).toBe(tag)
      expect(hashTag(queueInboxes)).toBe(tag)
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

  test('a shared key lives under the mutex hash tag, apart from every mutex key', () => {
    expect(sharedLockKeys('verrou:', 'doc:42')).toEqual({
      writer: 'verrou:{doc:42}:shared:writer',
      readers: 'verrou:{doc:42}:shared:readers',
      fence: 'verrou:{doc:42}:shared:fence',
      queue: 'verrou:{doc:42}:shared:queue',
      queueLeases: 'verrou:{doc:42}:shared:queue:leases',
      queueModes: 'verrou:{doc:42}:shared:queue:modes',
      channel: 'verrou:{doc:42}:shared:released',
    })
  })

  test.each(['plain', '}leading-brace', '{inner}', 'a}b', '{}', '}', '\\', '\\}x', '{', '🔒 ünïcode'])(
    'the shared keys of %j share the hash tag of its mutex keys, so one Cluster slot',
    (key) => {
      const tag = hashTag(lockKeys('verrou:', key).lock)
      for (const name of Object.values(sharedLockKeys('verrou:', key))) expect(hashTag(name)).toBe(tag)
    },
  )

  test('no shared key of any key is a mutex key of any key, nor another shared key', () => {
    // Adversarial keys: ones that spell out the suffixes of the other layout after a brace.
    const keys = [
      'x',
      'x}:shared',
      'x}:shared:writer',
      'x}:shared:fence{',
      'x}:fence',
      'x}:queue',
      'x}:shared:queue',
      '}',
      '\\x',
      '',
    ]
    const mutex = keys.flatMap((key) => Object.values(lockKeys('p:', key)))
    const shared = keys.flatMap((key) => Object.values(sharedLockKeys('p:', key)))
    expect(shared.filter((name) => mutex.includes(name))).toEqual([])
    expect(new Set(shared).size).toBe(shared.length)
  })

  test('prefixes with braces are refused (they would move the hash tag)', () => {
    expect(invalidPrefixReason('app:')).toBeUndefined()
    expect(invalidPrefixReason('')).toBeUndefined()
    expect(invalidPrefixReason('{app}:')).toMatch(/must not contain/)
    expect(invalidPrefixReason('app}')).toMatch(/must not contain/)
    expect(invalidPrefixReason(42)).toMatch(/must be a string/)
  })
})
