import { redisUrl } from '@verrou/test-utils/connection-settings'
import { freePort } from '@verrou/test-utils/free-port'
import { Redis, type RedisOptions } from 'ioredis'

/** The Redis the tests run against: REDIS_URL, default 127.0.0.1:6379. */
export { redisUrl }

/** A connection to the test Redis; the caller closes it. */
export function connect(options: RedisOptions = {}): Redis {
  return new Redis(redisUrl, { maxRetriesPerRequest: 1, ...options })
}

/** A local port nothing listens on: bound, then released. */
export const closedPort = freePort

/**
 * A connection to a port nothing listens on, set up as we advise in the README: failed commands are not
 * retried for ever, so every operation fails fast instead of waiting for a reconnect.
 */
export async function unreachableConnection(): Promise<Redis> {
  const connection = new Redis({ host: '127.0.0.1', port: await closedPort(), maxRetriesPerRequest: 0, connectTimeout: 1_000 })
  // The refused connects are the point; keep ioredis from printing each one.
  connection.on('error', () => {})
  return connection
}

/** A fresh key per test run, so parallel runs and other test files never collide. */
export function uniqueKey(label: string): string {
  return `${label}:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 10)}`
}
