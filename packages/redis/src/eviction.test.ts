import { errors, type Logger } from '@verrou/core'
import { commandCalls, type PrivateRedis, startPrivateRedis } from '@verrou/test-utils/redis-server'
import { afterEach, describe, expect, test } from 'vitest'
import { connect, uniqueKey } from '../test/connections.js'
import { redisStore } from './store.js'

// Each test runs its own redis-server: maxmemory settings must never reach the shared one.
const servers: PrivateRedis[] = []
const connections: { quit(): Promise<unknown> }[] = []

afterEach(async () => {
  await Promise.all(connections.splice(0).map((connection) => connection.quit()))
  await Promise.all(servers.splice(0).map((server) => server.dispose()))
})

async function server(...args: string[]) {
  const started = await startPrivateRedis({ args })
  servers.push(started)
  const connection = started.connect()
  const admin = started.connect()
  connections.push(connection, admin)
  return { connection, admin }
}

function recordingLogger() {
  const lines: { level: string; message: string | undefined; details: object }[] = []
  const record = (level: string) => (details: object, message?: string) => lines.push({ level, message, details })
  const logger: Logger = {
    trace: record('trace'),
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
  }
  return { logger, lines }
}

describe('a server that may evict keys', () => {
  test.each(['allkeys-lru', 'volatile-ttl'])(
    'maxmemory-policy %s: every operation is a storage error naming the policy, and nothing is written',
    async (policy) => {
      const { connection, admin } = await server('--maxmemory', '100mb', '--maxmemory-policy', policy)
      const store = redisStore({ connection })
      const key = uniqueKey('evicting')
      const failure = await store.acquire(key, 'o', 10_000).catch((error: unknown) => error)
      expect(failure).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
      expect((failure as Error).message).toContain(`maxmemory-policy ${policy}`)
      expect((failure as errors.E_LOCK_STORAGE_ERROR).operation).toBe('acquire')
      await expect(store.isLocked(key)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
      await expect(store.release(key, 'o')).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
      expect(await admin.dbsize()).toBe(0)
    },
  )

  test('once the server is set to noeviction, the same store works: no restart needed', async () => {
    const { connection, admin } = await server('--maxmemory', '100mb', '--maxmemory-policy', 'allkeys-lfu')
    const store = redisStore({ connection })
    const key = uniqueKey('fixed')
    await expect(store.acquire(key, 'o', 10_000)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
    await admin.config('SET', 'maxmemory-policy', 'noeviction')
    expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
    expect(await store.release(key, 'o')).toBe(true)
  })

  test("onEvictionPolicy 'warn': the store runs and warns once through the logger", async () => {
    const { connection, admin } = await server('--maxmemory', '100mb', '--maxmemory-policy', 'volatile-lru')
    const { logger, lines } = recordingLogger()
    const store = redisStore({ connection, onEvictionPolicy: 'warn', logger })
    const key = uniqueKey('warned')
    expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
    expect(await store.extend(key, 'o', 10_000)).toBe(true)
    expect(await store.release(key, 'o')).toBe(true)
    const warnings = lines.filter((line) => line.level === 'warn')
    expect(warnings).toHaveLength(1)
    expect(warnings[0]!.message).toContain('maxmemory-policy volatile-lru')
    expect(warnings[0]!.details).toMatchObject({ maxmemoryPolicy: 'volatile-lru', maxmemory: 104857600 })
    expect(await commandCalls(admin, 'info')).toBe(1)
  })
})

describe('a server that does not evict', () => {
  test('noeviction: nothing logged, and INFO asked once per store, however many operations and callers', async () => {
    const { connection, admin } = await server('--maxmemory', '100mb', '--maxmemory-policy', 'noeviction')
    const { logger, lines } = recordingLogger()
    const store = redisStore({ connection, logger })
    const keys = Array.from({ length: 10 }, (_, i) => uniqueKey(`calm-${i}`))
    // Concurrent first operations share the one question.
    await Promise.all(keys.map((key) => store.acquire(key, 'o', 10_000)))
    await Promise.all(keys.map((key) => store.release(key, 'o')))
    expect(lines).toEqual([])
    expect(await commandCalls(admin, 'info')).toBe(1)
  })

  test('an evicting policy without a memory limit (maxmemory 0) never evicts: the store runs', async () => {
    const { connection } = await server('--maxmemory', '0', '--maxmemory-policy', 'allkeys-random')
    const { logger, lines } = recordingLogger()
    const store = redisStore({ connection, logger })
    const key = uniqueKey('unlimited')
    expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
    expect(lines).toEqual([])
  })

  test('a server that refuses INFO (renamed, as managed services do): the store runs, says so once at info level', async () => {
    const { connection, admin } = await server('--rename-command', 'INFO', 'verrou-test-info')
    const { logger, lines } = recordingLogger()
    const store = redisStore({ connection, logger })
    const key = uniqueKey('refused')
    const refusals = async () =>
      Number(/^errorstat_ERR:count=(\d+)/m.exec(String(await admin.call('verrou-test-info', 'errorstats')))?.[1] ?? 0)
    await connection.ping()
    const before = await refusals()
    expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
    expect(await store.extend(key, 'o', 10_000)).toBe(true)
    expect(await store.release(key, 'o')).toBe(true)
    expect(lines.map((line) => line.level)).toEqual(['info'])
    expect(lines[0]!.message).toContain('maxmemory-policy')
    // Asked once: the refusal is remembered, not asked again at every operation.
    expect((await refusals()) - before).toBe(1)
  })

  test('a connection that fails while asking: the operation is a storage error, and the next one asks again', async () => {
    const { connection } = await server('--maxmemory-policy', 'noeviction')
    const store = redisStore({ connection })
    const key = uniqueKey('retry')
    connection.disconnect()
    await expect(store.acquire(key, 'o', 10_000)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
    await connection.connect()
    expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
  })
})

describe('options', () => {
  test.each([
    { fencingCounterGrace: 999 },
    { fencingCounterGrace: 1.5e3 + 0.5 },
    { fencingCounterGrace: '1h' },
    { fencingCounterGrace: Number.NaN },
    { fencingCounterGrace: Object.create(null) },
    { onEvictionPolicy: Object.create(null) },
    { onEvictionPolicy: 'ignore' },
    { logger: {} },
    { logger: null },
  ])('%o is refused before anything reaches Redis', async (options) => {
    const connection = connect({ lazyConnect: true })
    expect(() => redisStore({ connection, ...(options as object) })).toThrow(errors.E_INVALID_ARGUMENT)
    expect(connection.status).toBe('wait')
    connection.disconnect()
  })
})
