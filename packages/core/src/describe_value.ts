/** How values, keys and causes appear in error messages: short, never `[object Object]`, never throwing. */

/** Keys longer than this are cut in messages (the full key stays on the error's `key`). */
const KEY_SHOWN = 64
const TEXT_SHOWN = 200

function cut(text: string, limit: number): string {
  if (text.length <= limit) return text
  // Do not split a surrogate pair.
  const end = /[\uD800-\uDBFF]/.test(text[limit - 1] ?? '') ? limit - 1 : limit
  return `${text.slice(0, end)}…(${text.length} chars)`
}

/** A lock key, quoted, shortened when long: `"invoice:42"`, `"aaaa…(3000 chars)"`. */
export function quoteKey(key: string): string {
  if (key.length <= KEY_SHOWN) return JSON.stringify(key)
  return `${JSON.stringify(key.slice(0, KEY_SHOWN)).slice(0, -1)}…(${key.length} chars)"`
}

/** Any value, as a message shows it. */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(cut(value, TEXT_SHOWN))
    case 'function':
      return 'a function'
    case 'symbol':
      return value.description === undefined ? 'a symbol' : `Symbol(${cut(value.description, TEXT_SHOWN)})`
    case 'object':
      return value === null ? 'null' : describeObject(value)
    case 'bigint':
      return `${value}n`
    default:
      return String(value)
  }
}

function describeObject(value: object): string {
  if (Array.isArray(value)) return `an array of ${value.length}`
  if (value instanceof Error) return `${value.name}: ${cut(String(value.message), TEXT_SHOWN)}`
  let keys: string[]
  let kind: string
  try {
    keys = Object.keys(value)
    const prototype = Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null
    const name = prototype?.constructor?.name
    kind = typeof name === 'string' && name !== '' && name !== 'Object' ? `a ${name}` : 'an object'
  } catch {
    return 'an object'
  }
  if (keys.length === 0) return `${kind} with no properties`
  const shown = keys.slice(0, 5).map((key) => cut(key, 40))
  return `${kind} with ${shown.join(', ')}${keys.length > 5 ? `, … (${keys.length} properties)` : ''}`
}

/** What a store threw, as a message shows it: an Error's message, anything else described. */
export function describeCause(error: unknown): string {
  if (error instanceof Error) return cut(String(error.message), TEXT_SHOWN) || error.name
  return describeValue(error)
}

/** A store's class name when it has one (`RedisStore`), else "Lock store". */
export function describeStore(store: object): string {
  try {
    const name = (Object.getPrototypeOf(store) as { constructor?: { name?: unknown } } | null)?.constructor?.name
    if (typeof name === 'string' && name !== '' && name !== 'Object') return name
  } catch {
    // A proxy or exotic object: fall through to the generic name.
  }
  return 'Lock store'
}
