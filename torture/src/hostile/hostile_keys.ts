/**
 * Keys and owners chosen to break stores that build queries, key names or payloads from them: every one
 * must be a lock of its own (or be refused with a typed error), and none may touch another's lock.
 */
export const SENTINEL_KEY = 'victim'

export const HOSTILE_KEYS: Record<string, string> = {
  plain: 'plain',
  'unicode CJK': '锁',
  'unicode emoji': '🔒🗝️',
  'NFC é': '\u00e9',
  'NFD é': 'e\u0301',
  'right-to-left override': '\u202eabc',
  'zero-width space': '\u200b',
  'byte order mark': '\ufeff',
  'NUL alone': '\0',
  'NUL inside (b)': 'a\0b',
  'NUL inside (c)': 'a\0c',
  'prefix of NUL keys': 'a',
  'two NULs': '\0\0',
  'single quote': "'",
  'double quote': '"',
  backtick: '`',
  backslash: '\\',
  'SQL injection (quote)': "victim'; DROP TABLE verrou_locks; --",
  'SQL injection (or)': "' OR '1'='1",
  'SQL injection (double quote)': '" OR ""="',
  'SQL comment': '-- victim',
  'SQL block comment': '/* victim */',
  'SQL placeholder $1': '$1',
  'SQL placeholder ?': '?',
  'SQL named parameter': ':victim',
  'SQL NULL': 'NULL',
  percent: '%',
  'victim%': 'victim%',
  underscore: '_',
  victi_: 'victi_',
  star: '*',
  'victim*': 'victim*',
  'glob class': '[v]ictim',
  'empty hash tag': '{}',
  'open brace': '{',
  'close brace first': '}a',
  'escaped close brace': '\\}a',
  'hash tag around the sentinel': '{victim}',
  'hash tag inside': 'a{b}c',
  'Redis protocol': '*1\r\n$4\r\nPING\r\n',
  'Redis prefix lookalike': 'verrou:{victim}',
  'fence suffix lookalike': 'victim}:fence',
  space: ' ',
  'trailing space': 'victim ',
  'leading space': ' victim',
  newline: '\n',
  tab: '\t',
  'upper case': 'VICTIM',
  'title case': 'Victim',
  'JSON object': '{"v":1,"key":"victim"}',
  __proto__: '__proto__',
  constructor: 'constructor',
  'leading zeros': '007',
  'number-like': '1e3',
  'path traversal': '../../etc/passwd',
  'replacement character': '\ufffd',
  'exactly 2048 bytes': 'k'.repeat(2048),
  '2049 bytes': 'k'.repeat(2049),
  '64 KiB': 'x'.repeat(64 * 1024),
  '200 KB of é': '\u00e9'.repeat(100_000),
}

/**
 * Strings no UTF-8 can hold: a store that writes keys as UTF-8 turns each lone surrogate into U+FFFD and
 * merges these keys into one lock. Each must be a lock of its own, or be refused with E_INVALID_ARGUMENT.
 */
export const LONE_SURROGATE_KEYS: Record<string, string> = {
  'lone high surrogate': '\ud800',
  'lone low surrogate': '\udc00',
  'other lone high surrogate': '\udbff',
  'replacement character': '\ufffd',
  'x + lone high surrogate': 'x\ud800',
  'x + other lone high surrogate': 'x\udbff',
  'x + replacement character': 'x\ufffd',
}

export function hasLoneSurrogate(text: string): boolean {
  return /[\ud800-\udfff]/.test(text.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))
}

/** Well-formed UTF-8 within DynamoDB's 2048-byte key limit: every store must take these as they are. */
export function mustBeAccepted(key: string): boolean {
  return !hasLoneSurrogate(key) && Buffer.byteLength(key) <= 2048
}

export const HOSTILE_OWNERS: Record<string, string> = {
  plain: 'owner',
  'NUL suffix': 'owner\0',
  'NUL then a': 'owner\0a',
  'NUL then b': 'owner\0b',
  'upper case': 'OWNER',
  'NFC é': '\u00e9',
  'NFD é': 'e\u0301',
  quote: "o'wner",
  'SQL injection': "' OR owner IS NOT NULL --",
  percent: '%',
  star: '*',
  'leading zeros (JSON number-like)': '007',
  'JSON-like': '{"owner":1}',
  'lone surrogate': '\ud800',
  'replacement character': '\ufffd',
  '64 KiB': 'o'.repeat(64 * 1024),
}
