/** What the scripts publish on a waiter's inbox (see announce_next and hand_over in lua_helpers.ts). */
export interface InboxMessage {
  /** The channel the key's releases are announced on, as the scripts were given it. */
  channel: string
  /** The waiter the message is for. */
  owner: string
  /** Set when a release handed the lock to `owner`: the grant's token and the place it was handed for. */
  handOver?: { token: number; place: number }
}

const COMMA = 0x2c
const COLON = 0x3a
const utf8 = new TextDecoder()

/**
 * Reads `<channel length in bytes>:<channel><owner>`, after `<token>,<place number>,` for a hand-over;
 * undefined if malformed. Bytes, not a string: the length counts UTF-8 bytes (Lua's string.len).
 */
export function readInboxMessage(message: Uint8Array): InboxMessage | undefined {
  let start = 0
  let handOver: InboxMessage['handOver']
  const firstComma = message.indexOf(COMMA)
  const firstColon = message.indexOf(COLON)
  if (firstComma > 0 && (firstColon < 0 || firstComma < firstColon)) {
    const secondComma = message.indexOf(COMMA, firstComma + 1)
    if (secondComma < 0) return undefined
    const token = wholeNumber(message, 0, firstComma)
    const place = wholeNumber(message, firstComma + 1, secondComma)
    if (token === undefined || place === undefined) return undefined
    handOver = { token, place }
    start = secondComma + 1
  }
  const colon = message.indexOf(COLON, start)
  const length = wholeNumber(message, start, colon, true)
  if (colon < 0 || length === undefined) return undefined
  const end = colon + 1 + length
  if (end >= message.length) return undefined
  const told: InboxMessage = {
    channel: utf8.decode(message.subarray(colon + 1, end)),
    owner: utf8.decode(message.subarray(end)),
  }
  if (handOver !== undefined) told.handOver = handOver
  return told
}

/** The decimal digits in [from, to) as a safe integer (positive unless `zeroAllowed`), or undefined. */
function wholeNumber(bytes: Uint8Array, from: number, to: number, zeroAllowed = false): number | undefined {
  if (to <= from || to - from > 16) return undefined
  let value = 0
  for (let index = from; index < to; index++) {
    const digit = (bytes[index] as number) - 0x30
    if (digit < 0 || digit > 9) return undefined
    value = value * 10 + digit
  }
  return Number.isSafeInteger(value) && (zeroAllowed || value > 0) ? value : undefined
}
