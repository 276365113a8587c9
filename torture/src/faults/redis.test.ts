import { errors, LockFactory } from '@verrou/core'
import { type RedisStore, redisStore } from '@verrou/redis'
import { type PrivateRedis, startPrivateRedis } from '@verrou/test-utils/redis-server'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { tally } from '../tally.js'
import { installCrashGuard } from './crash_guard.js'
import { eventually, runOutage } from './outage.js'

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

describe('redis: a server without persistence restarted empty (a limit, shown as it is)', () => {
  test('locks and fencing counters are gone: the holder is told "not owned"; tokens still rise, from the clock', async () => {
    const redis = await startPrivateRedis({ persistent: false })
    const connection = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 })
    connection.on('error', () => {})
    try {
      const factory = new LockFactory(redisStore({ connection }), { operationTimeout: OPERATION_TIMEOUT })
      const holder = factory.createLock('amnesia', '60s')
      for (let round = 0; round < 3; round++) {
        expect(await holder.acquireImmediately()).toBe(true)
        await holder.release()
      }
      expect(await holder.acquireImmediately()).toBe(true)
      const tokenBefore = holder.fencingToken!
      await redis.server.restart()
      tally('faultsInjected', 'redis', 1, 'restarted without persistence')
      // The server no longer has the lock, so "not owned" is now the truth: exclusion and fencing across such a
      // restart need persistence (appendonly with fsync) or a replica that survives, as the README says.
      await eventually(
        async () => {
          await expect(holder.extend()).rejects.toBeInstanceOf(errors.E_LOCK_NOT_OWNED)
        },
        10_000,
        'extend after an empty restart',
        true,
      )
      const next = factory.createLock('amnesia', '60s')
      expect(await next.acquireImmediately()).toBe(true)
      // A counter created anew starts from the server's clock in microseconds, above the lost counter's tokens.
      expect(next.fencingToken!).toBeGreaterThan(tokenBefore)
    } finally {
      connection.disconnect()
      await redis.dispose()
    }
  })
})
