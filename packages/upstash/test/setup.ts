import { Redis, type RedisConfigNodejs } from '@upstash/redis'
import { redisUrl } from '@verrou/test-utils/connection-settings'
import { freePort } from '@verrou/test-utils/free-port'
import { type PrivateRedis, startPrivateRedis } from '@verrou/test-utils/redis-server'
import { startUpstashRestServer, type UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import type { Redis as IORedis } from 'ioredis'

/** The real Redis behind the REST server: REDIS_URL, default 127.0.0.1:6379. */
export { redisUrl }

export function startRestServer(): Promise<UpstashRestServer> {
  return startUpstashRestServer({ redisUrl, token: `test-token-${Math.random().toString(36).slice(2)}` })
}

/** An unmodified @upstash/redis client for the REST server; no telemetry from tests. */
export function client(server: { url: string; token: string }, options: Partial<RedisConfigNodejs> = {}): Redis {
  return new Redis({ url: server.url, token: server.token, enableTelemetry: false, ...options })
}

/** A local port nothing listens on: bound, then released. */
export const closedPort = freePort

/** A fresh key per test run, so parallel runs and other test files never collide. */
export function uniqueKey(label: string): string {
  return `${label}:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 10)}`
}

/**
 * A private Redis (so that INFO commandstats counts one test file's commands only) behind a REST server of
 * its own, with an admin connection to that Redis. `close()` ends all three.
 */
export interface PrivateRestServer {
  redis: PrivateRedis
  server: UpstashRestServer
  admin: IORedis
  close(): Promise<void>
}

export async function startPrivateRestServer(token: string): Promise<PrivateRestServer> {
  const redis = await startPrivateRedis()
  const server = await startUpstashRestServer({ redisUrl: redis.url, token })
  const admin = redis.connect()
  const close = async () => {
    admin.disconnect()
    await server.close()
    await redis.dispose()
  }
  return { redis, server, admin, close }
}
