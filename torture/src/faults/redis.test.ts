import { LockFactory } from '@verrou/core'
import { type RedisStore, redisStore } from '@verrou/redis'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type PrivateRedis, startPrivateRedis } from '../backends/redis_server.js'
import { installCrashGuard } from './crash_guard.js'
import { runOutage } from './outage.js'

/** Short on purpose: a frozen server must cost a caller this long, not the 10 s default. */
const OPERATION_TIMEOUT = 1_000
/** Scheduling slack on a loaded two-core machine. */
const SLACK = 1_500

describe('redis: a private redis-server frozen, killed and restarted under the store', () => {
  const guard = installCrashGuard()
  let redis: PrivateRedis
  let connection: Redis
  let store: RedisStore
  let factory: LockFactory

  beforeAll(async () => {
    // Persistent (fsync on every write), so a SIGKILL loses nothing and the test can demand that every
    // lock and fencing counter survives the crash.
    redis = await startPrivateRedis({ persistent: true })
    // As the README advises; reconnect quickly so recovery is measured in tenths of a second.
    connection = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 })
    connection.on('error', () => {})
    store = redisStore({ connection })
    factory = new LockFactory(store, { operationTimeout: OPERATION_TIMEOUT })
  })

  afterAll(async () => {
    await store?.close()
    connection?.disconnect()
    await redis?.dispose()
    guard.dispose()
    expect(guard.seen).toEqual([])
  })

  test('SIGSTOP mid-operation: every call fails with a storage error within the timeout; SIGCONT: the same store works', async () => {
    await runOutage(
      factory,
      {
        name: 'redis SIGSTOP',
        inflict: async () => redis.server.pause(),
        heal: async () => redis.server.resume(),
      },
      { store: 'redis', failWithin: OPERATION_TIMEOUT + SLACK, recoverWithin: 5_000 },
    )
  })

  test('SIGKILL while operations are in flight, restart on the same port: storage errors, then the same store works', async () => {
    const patient = new LockFactory(store, { operationTimeout: 10_000 })
    await runOutage(
      patient,
      {
        name: 'redis SIGKILL mid-operation',
        inflict: async () => redis.server.pause(),
        strike: () => redis.server.kill(),
        heal: () => redis.server.start(),
      },
      { store: 'redis', failWithin: 10_000, failAfterStrikeWithin: 2_000, recoverWithin: 10_000 },
    )
  })

  test('server down (connection refused) for a while: storage errors, then the same store works', async () => {
    await runOutage(
      factory,
      {
        name: 'redis down',
        inflict: () => redis.server.kill(),
        heal: () => redis.server.start(),
      },
      { store: 'redis', failWithin: OPERATION_TIMEOUT + SLACK, recoverWithin: 10_000 },
    )
  })

  test('no unhandled rejection and no uncaught exception so far', () => {
    expect(guard.seen).toEqual([])
  })
})
