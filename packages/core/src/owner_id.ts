/**
 * A random owner id: a version 4 UUID from Web Crypto (122 random bits), so it works on Node, Bun, Deno and
 * edge runtimes alike. Unguessable, so no other process can release or extend a lock it did not acquire.
 * randomUUID rather than getRandomValues: it is an order of magnitude cheaper per call, and every lock
 * created without an owner pays for one.
 */
export function randomOwnerId(): string {
  return globalThis.crypto.randomUUID()
}
