import { Redis as UpstashRedis } from '@upstash/redis'
import { LockFactory } from '@verrou/core'
import { type PrivateRedis, startPrivateRedis } from '@verrou/test-utils/redis-server'
import { startUpstashRestServer, type UpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import { upstashStore } from '@verrou/upstash'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { installCrashGuard } from './crash_guard.js'
import { runOutage } from './outage.js'

const OPERATION_TIMEOUT = 1_000
const SLACK = 1_500

describe('upstash: the REST server stopped, and the Redis behind it frozen and killed', () => {
  const guard = installCrashGuard()
  const token = `torture-${Math.random().toString(36).slice(2)}`
  let redis: PrivateRedis
  let rest: UpstashRestServer
  let port: number
  let factory: LockFactory

  const startRest = async () => {
    rest = await startUpstashRestServer({ redisUrl: redis.url, token, port })
  }

  beforeAll(async () => {
    redis = await startPrivateRedis({ persistent: true })
    rest = await startUpstashRestServer({ redisUrl: redis.url, token })
    port = Number(new URL(rest.url).port)
    // The client as users create it: its own retries (5, with backoff) are left on; operationTimeout bounds them.
    const connection = new UpstashRedis({ url: rest.url, token, enableTelemetry: false })
    factory = new LockFactory(upstashStore({ connection }), { operationTimeout: OPERATION_TIMEOUT })
  })

  afterAll(async () => {
    await rest?.close()
    await redis?.dispose()
    guard.dispose()
    expect(guard.seen).toEqual([])
  })

  test('REST endpoint down (connection refused), then back on the same port: storage errors, then the same store works', async () => {
    await runOutage(
      factory,
      { name: 'upstash REST server down', inflict: () => rest.close(), heal: startRest },
      { store: 'upstash', failWithin: OPERATION_TIMEOUT + SLACK, recoverWithin: 10_000 },
    )
  })

  test('the Redis behind it frozen (SIGSTOP): requests hang, calls fail within the timeout; SIGCONT: the same store works', async () => {
    await runOutage(
      factory,
      { name: 'upstash Redis SIGSTOP', inflict: async () => redis.server.pause(), heal: async () => redis.server.resume() },
      { store: 'upstash', failWithin: OPERATION_TIMEOUT + SLACK, recoverWithin: 10_000 },
    )
  })

  test('the Redis behind it killed mid-operation and restarted: storage errors, then the same store works', async () => {
    const patient = new LockFactory(
      upstashStore({ connection: new UpstashRedis({ url: rest.url, token, enableTelemetry: false, retry: false }) }),
      { operationTimeout: 10_000 },
    )
    await runOutage(
      patient,
      {
        name: 'upstash Redis SIGKILL mid-operation',
        inflict: async () => redis.server.pause(),
        strike: () => redis.server.kill(),
        heal: () => redis.server.start(),
      },
      { store: 'upstash', failWithin: 10_000, recoverWithin: 10_000 },
    )
  })

  test('no unhandled rejection and no uncaught exception so far', () => {
    expect(guard.seen).toEqual([])
  })
})
