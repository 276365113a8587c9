/**
 * The channel an Upstash store announces a key's releases on. `@upstash/redis` puts a subscribed channel
 * into the request path as it is (`/subscribe/<channel>`), so a channel with `/`, `?`, `#` or `%` in it (a
 * key with one, or a prefix) would subscribe to something else. So the store publishes on a name made of
 * letters and digits only: a 64-bit hash of the Redis channel (two 32-bit FNV-1a hashes). Two keys whose
 * hashes collide share a channel, which costs nothing: an announcement names its waiter by owner id, and
 * nobody else acts on it.
 */
export function streamChannel(channel: string): string {
  let low = 0x811c9dc5
  let high = 0x050c5d1f
  for (let index = 0; index < channel.length; index++) {
    const unit = channel.charCodeAt(index)
    low = Math.imul(low ^ unit, 0x01000193)
    high = Math.imul(high ^ unit, 0x01000193) ^ (low >>> 15)
  }
  return `verrou-released:${(high >>> 0).toString(16).padStart(8, '0')}${(low >>> 0).toString(16).padStart(8, '0')}`
}
