import { errors } from '@verrou/core'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createClient, createPool, dropTable, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

const pool = createPool()
const tableName = uniqueTableName()
const store = new PostgresStore({ connection: pool, tableName })
const other = new PostgresStore({ connection: pool, tableName })

afterAll(async () => {
  await store.close()
  await other.close()
  await dropTable(pool, tableName)
  await pool.end()
})

function tokenOf(result: Awaited<ReturnType<PostgresStore['acquire']>>): number {
  if (!result.acquired) throw new Error('expected the lock to be acquired')
  return result.fencingToken
}

describe('keys and owners', () => {
  const hostileKeys = [
    `'; DROP TABLE ${tableName}; --`,
    `" OR 1=1; --`,
    `$1 $2 \\x00 \\' E'\\\\'`,
    'with\0nul\0bytes',
    '\0',
    'lone \uD800 surrogate',
    'lone \uFFFD replacement',
    'Foo',
    'foo',
    'FOO',
    'straße',
    'STRASSE',
    'e\u0301',
    '\u00e9',
    '🔒 emoji 🔑',
    ' ',
    '\n\t\r',
    'k'.repeat(10_000),
    'k'.repeat(10_001),
    '€'.repeat(40_000),
  ]

  test('hostile, long, case- and normalisation-variant keys are distinct locks and leave the table intact', async () => {
    const prefix = uniqueKey('hostile')
    const keys = hostileKeys.map((key) => `${prefix}${key}`)
    // Every key is taken by the same owner: if any two collided, the second would not be acquired.
    for (const key of keys) expect((await store.acquire(key, 'owner-a', 60_000)).acquired).toBe(true)
    for (const key of keys) {
      expect(await other.isLocked(key)).toBe(true)
      expect((await other.acquire(key, 'owner-b', 60_000)).acquired).toBe(false)
      expect(await other.release(key, 'owner-b')).toBe(false)
    }
    for (const key of keys) expect(await store.release(key, 'owner-a')).toBe(true)
    for (const key of keys) expect(await store.isLocked(key)).toBe(false)
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${tableName}"`)
    expect(rows[0].n).toBeGreaterThanOrEqual(keys.length)
  })

  test('keys are stored as their UTF-8 bytes, readable in SQL', async () => {
    const key = uniqueKey('readable é 🔒')
    await store.acquire(key, 'me', 60_000)
    const { rows } = await pool.query(`SELECT convert_from(key, 'UTF8') AS key FROM "${tableName}" WHERE key = $1`, [
      Buffer.from(key, 'utf8'),
    ])
    expect(rows).toEqual([{ key }])
  })

  test('owners with NUL bytes, lone surrogates or case variants are exact', async () => {
    const key = uniqueKey()
    expect((await store.acquire(key, 'own\0er\uDC00', 60_000)).acquired).toBe(true)
    expect(await store.release(key, 'own\0er\uFFFD')).toBe(false)
    expect(await store.release(key, 'OWN\0ER\uDC00')).toBe(false)
    expect(await store.extend(key, 'own\0er', 60_000)).toBe(false)
    expect(await store.extend(key, 'own\0er\uDC00', 60_000)).toBe(true)
    expect(await store.release(key, 'own\0er\uDC00')).toBe(true)
  })
})

describe('acquire', () => {
  test('a failed acquire tells how long the holder lease has left, on the server clock', async () => {
    const key = uniqueKey()
    await store.acquire(key, 'a', 5_000)
    const result = await other.acquire(key, 'b', 5_000)
    expect(result.acquired).toBe(false)
    if (result.acquired) return
    expect(result.expiresIn).toBeGreaterThan(4_000)
    expect(result.expiresIn).toBeLessThanOrEqual(5_000)
  })

  test('a lease that never expires has no expiresIn', async () => {
    const key = uniqueKey()
    await store.acquire(key, 'a', null)
    expect(await other.acquire(key, 'b', 1000)).toEqual({ acquired: false })
    expect(await store.forceRelease(key)).toBeUndefined()
    expect((await other.acquire(key, 'b', 1000)).acquired).toBe(true)
  })

  test('50 concurrent acquirers on 10 pool connections: exactly one wins, for a new key and a released one', async () => {
    const stores = Array.from({ length: 5 }, () => new PostgresStore({ connection: pool, tableName, listen: false }))
    const key = uniqueKey('race')
    const race = () =>
      Promise.all(Array.from({ length: 50 }, (_, i) => stores[i % stores.length]!.acquire(key, `owner-${i}`, 60_000)))

    const fresh = await race()
    const freshWinners = fresh.filter((result) => result.acquired)
    expect(freshWinners).toHaveLength(1)
    await store.forceRelease(key)

    const again = await race()
    const againWinners = again.filter((result) => result.acquired)
    expect(againWinners).toHaveLength(1)
    expect(tokenOf(againWinners[0]!)).toBeGreaterThan(tokenOf(freshWinners[0]!))
  })

  test('tokens keep increasing across release, expiry and force release', async () => {
    const key = uniqueKey()
    const tokens: number[] = []
    tokens.push(tokenOf(await store.acquire(key, 'a', 60_000)))
    await store.release(key, 'a')
    tokens.push(tokenOf(await store.acquire(key, 'b', 50)))
    await new Promise((resolve) => setTimeout(resolve, 80))
    tokens.push(tokenOf(await other.acquire(key, 'c', 60_000)))
    await other.forceRelease(key)
    tokens.push(tokenOf(await store.acquire(key, 'd', 60_000)))
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!)
  })
})

describe('round trips', () => {
  test('every lock operation is exactly one statement once the table exists, sent as a named prepared statement', async () => {
    const statements: pg.QueryConfig[] = []
    // Counts what the store sends through the pool, without changing it.
    const counting = new Proxy(pool, {
      get(target, property, receiver) {
        if (property === 'query') {
          return (config: pg.QueryConfig) => {
            statements.push(config)
            return target.query(config)
          }
        }
        return Reflect.get(target, property, receiver)
      },
    })
    const counted = new PostgresStore({ connection: counting, tableName, pruneInterval: false })
    const key = uniqueKey()
    await counted.isLocked(key)
    statements.length = 0

    await counted.acquire(key, 'a', 10_000)
    await counted.acquire(key, 'b', 10_000)
    await counted.extend(key, 'a', 10_000)
    await counted.isLocked(key)
    await counted.release(key, 'a')
    await counted.acquire(key, 'b', 10_000)
    await counted.forceRelease(key)
    expect(statements).toHaveLength(7)
    expect(statements.map((statement) => statement.name?.replace(/_[0-9a-f]{16}$/, ''))).toEqual([
      'verrou_acquire',
      'verrou_acquire',
      'verrou_extend',
      'verrou_is_locked',
      'verrou_release_unqueued',
      'verrou_acquire',
      'verrou_force_release',
    ])
    await counted.close()
  })
})

describe('on a single pg Client', () => {
  let client: pg.Client
  let clientStore: PostgresStore
  const warnings: Error[] = []
  const onWarning = (warning: Error) => warnings.push(warning)

  beforeAll(async () => {
    client = await createClient()
    clientStore = new PostgresStore({ connection: client, tableName })
    process.on('warning', onWarning)
  })

  afterAll(async () => {
    process.off('warning', onWarning)
    await clientStore.close()
    await client.end()
  })

  test('concurrent operations are queued by the store, not by pg (no deprecation warning)', async () => {
    const keys = Array.from({ length: 20 }, () => uniqueKey('client'))
    const results = await Promise.all(keys.map((key) => clientStore.acquire(key, 'a', 60_000)))
    expect(results.every((result) => result.acquired)).toBe(true)
    expect(await Promise.all(keys.map((key) => clientStore.release(key, 'a')))).toEqual(keys.map(() => true))
    await new Promise((resolve) => setImmediate(resolve))
    expect(warnings.filter((warning) => /already executing a query/.test(warning.message))).toEqual([])
  })

  test('a statement the server rejects is a storage error and does not block the ones queued behind it', async () => {
    const key = uniqueKey()
    const missingTable = new PostgresStore({ connection: client, tableName: uniqueTableName('missing'), autoCreateTable: false })
    const refused = missingTable.acquire(uniqueKey(), 'a', 60_000)
    const queued = clientStore.acquire(key, 'a', 60_000)
    const [refusal, result] = await Promise.allSettled([refused, queued])
    expect(refusal.status === 'rejected' && refusal.reason).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    // 42P01: undefined_table, the server's own error kept as the cause.
    expect(refusal.status === 'rejected' && refusal.reason).toMatchObject({ operation: 'acquire', cause: { code: '42P01' } })
    expect(result.status === 'fulfilled' && result.value.acquired).toBe(true)
    expect(await clientStore.isLocked(key)).toBe(true)
  })
})

describe('options', () => {
  test('bad options are rejected with E_INVALID_ARGUMENT before anything reaches the server', () => {
    const bad: Array<Record<string, unknown>> = [
      {},
      { connection: null },
      { connection: 'postgres://localhost' },
      { connection: pool, autoCreateTable: 'yes' },
      { connection: pool, pruneAfter: -1 },
      { connection: pool, pruneAfter: 1.5 },
      { connection: pool, pruneInterval: true },
      { connection: pool, pruneBatchSize: 0 },
      { connection: pool, listen: 1 },
      { connection: pool, preparedStatements: 'false' },
    ]
    for (const [index, options] of bad.entries()) {
      expect(() => new PostgresStore(options as never), `case ${index}`).toThrow(errors.E_INVALID_ARGUMENT)
    }
  })

  test('listen: false leaves out subscribeToReleases, so waiters know to poll', () => {
    expect(new PostgresStore({ connection: pool, listen: false }).subscribeToReleases).toBeUndefined()
    expect(typeof store.subscribeToReleases).toBe('function')
  })
})
