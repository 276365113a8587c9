import { createServer } from 'node:net'
import { Redis, type RedisConfigNodejs } from '@upstash/redis'
import { startUpstashRestServer, type UpstashRestServer } from './rest_server.js'

/** The real Redis behind the REST server: REDIS_URL, default 127.0.0.1:6379. */
export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

export function startRestServer(): Promise<UpstashRestServer> {
  return startUpstashRestServer({ redisUrl, token: `test-token-${Math.random().toString(36).slice(2)}` })
}

/** An unmodified @upstash/redis client for the REST server; no telemetry from tests. */
export function client(server: { url: string; token: string }, options: Partial<RedisConfigNodejs> = {}): Redis {
  return new Redis({ url: server.url, token: server.token, enableTelemetry: false, ...options })
}

/** A local port nothing listens on: bound, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** A fresh key per test run, so parallel runs and other test files never collide. */
export function uniqueKey(label: string): string {
  return `${label}:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 10)}`
}
