/**
 * A random owner id: 128 bits from Web Crypto, so it works on Node, Bun, Deno and edge runtimes alike.
 * Unguessable, so no other process can release or extend a lock it did not acquire by chance.
 */
export function randomOwnerId(): string {
  const bytes = new Uint8Array(16)
  globalThis.crypto.getRandomValues(bytes)
  let id = ''
  for (const byte of bytes) id += byte.toString(16).padStart(2, '0')
  return id
}
