import { describe, expect, test } from 'vitest'
import { readInboxMessage } from './inbox_message.js'

const bytes = (text: string) => new TextEncoder().encode(text)

describe('readInboxMessage', () => {
  test('an announcement: the channel by its length in bytes, then the owner', () => {
    expect(readInboxMessage(bytes('14:verrou:{k}:relowner'))).toEqual({ channel: 'verrou:{k}:rel', owner: 'owner' })
    // Commas and colons inside the channel or the owner are content, not separators.
    expect(readInboxMessage(bytes('11:v:{a,b}:relo,w:n'))).toEqual({ channel: 'v:{a,b}:rel', owner: 'o,w:n' })
    // The length counts UTF-8 bytes: "é" is two.
    expect(readInboxMessage(bytes('6:{é}:xowner'))).toEqual({ channel: '{é}:x', owner: 'owner' })
  })

  test('a hand-over: the token and the place number come first', () => {
    expect(readInboxMessage(bytes('1764000000000001,1764000000000000,5:{k}:xheir'))).toEqual({
      channel: '{k}:x',
      owner: 'heir',
      handOver: { token: 1_764_000_000_000_001, place: 1_764_000_000_000_000 },
    })
  })

  test.each([
    ['', 'nothing'],
    ['owner', 'no length'],
    ['x:abc', 'a length that is not a number'],
    ['9:abc', 'a channel longer than the message'],
    ['3:abc', 'no owner'],
    ['-1:abc', 'a negative length'],
    ['12,3:abcowner', 'a token without a place'],
    ['0,5,3:abcowner', 'a zero token'],
    ['7,x,3:abcowner', 'a place that is not a number'],
    ['99999999999999999,5,3:abcowner', 'a token past the largest safe integer'],
  ])('%j is refused: %s', (message) => {
    expect(readInboxMessage(bytes(message))).toBeUndefined()
  })
})
