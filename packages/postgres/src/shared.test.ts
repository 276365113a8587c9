import { errors, type SharedLockStore, type SharedMode } from '@verrou/core'
import { afterAll, describe, expect, test } from 'vitest'
import { connectionConfig, createPool, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { sharedLocksSql } from './shared_sql.js'
import { PostgresStore } from './store.js'

/** Semaphores and read-write locks on PostgreSQL (`store.shared`), against the real server. */
const pool = createPool()
const tableName = uniqueTableName('verrou_shared')
const store = new PostgresStore({ connection: pool, tableName, listen: false, pruneInterval: false })
const shared = store.shared as SharedLockStore
const tables: string[] = [tableName]

const READ: SharedMode = { exclusive: false, limit: null }
const WRITE: SharedMode = { exclusive: true, limit: null }
const permits = (limit: number): SharedMode => ({ exclusive: false, limit })
const PLACE = { lease: 10_000 }

afterAll(async () => {
  await store.close()
  for (const table of tables) await dropTable(pool, table)
  await pool.end()
})

/** The key's stored row, or undefined once it was deleted. */
async function rowOf(key: string) {
  const { rows } = await pool.query(`SELECT * FROM "${tableName}_shared" WHERE key = $1`, [Buffer.from(key)])
  return rows[0] as { holders: Buffer[]; waiters: Buffer[] } | undefined
}

function token(result: Awaited<ReturnType<SharedLockStore['acquire']>>): number {
  if (!result.acquired) throw new Error(`expected a grant, got ${JSON.stringify(result)}`)
  return result.fencingToken
}

describe('PostgresStore.shared', () => {
  test('readers share, a writer excludes them, a permit counts as a reader', async () => {
    const key = uniqueKey()
    token(await shared.acquire(key, 'r1', READ, 60_000))
    token(await shared.acquire(key, 'r2', READ, 60_000))
    token(await shared.acquire(key, 'p1', permits(3), 60_000))
    expect(await shared.acquire(key, 'p2', permits(3), 60_000)).toMatchObject({ acquired: false })
    expect(await shared.acquire(key, 'w', WRITE, 60_000)).toMatchObject({ acquired: false })
    expect(await shared.isLocked(key, WRITE)).toBe(true)
    expect(await shared.isLocked(key, READ)).toBe(false)
    expect(await shared.isLocked(key, permits(3))).toBe(true)
    expect(await shared.isLocked(key, permits(4))).toBe(false)
    await shared.forceRelease(key, READ)
    expect(await shared.isLocked(key, WRITE)).toBe(false)
    token(await shared.acquire(key, 'w', WRITE, 60_000))
    expect(await shared.acquire(key, 'r3', READ, 60_000)).toMatchObject({ acquired: false })
    expect(await shared.isLocked(key, READ)).toBe(true)
    // Forcing the readers out leaves the writer; forcing the writer out frees the key.
    await shared.forceRelease(key, READ)
    expect(await shared.isLocked(key, READ)).toBe(true)
    await shared.forceRelease(key, WRITE)
    expect(await shared.isLocked(key, WRITE)).toBe(false)
    expect(await rowOf(key)).toBeUndefined()
  })

  test('an expired holder does not count, and can neither release nor extend', async () => {
    const key = uniqueKey()
    token(await shared.acquire(key, 'short', permits(1), 150))
    expect(await shared.acquire(key, 'next', permits(1), 60_000)).toMatchObject({ acquired: false })
    await sleep(250)
    expect(await shared.isLocked(key, permits(1))).toBe(false)
    expect(await shared.isLocked(key, WRITE)).toBe(false)
    expect(await shared.extend(key, 'short', permits(1), 60_000)).toBe(false)
    token(await shared.acquire(key, 'next', permits(1), 60_000))
    expect(await shared.release(key, 'short', permits(1))).toBe(false)
    // The expired holding was dropped from the row by the acquire that read it.
    expect((await rowOf(key))?.holders.map(String)).toEqual(['next'])
  })

  test('a stale owner cannot release or extend once its key was granted to another', async () => {
    const key = uniqueKey()
    const first = token(await shared.acquire(key, 'stale', WRITE, 150))
    await sleep(250)
    const second = token(await shared.acquire(key, 'fresh', WRITE, 60_000))
    expect(second).toBeGreaterThan(first)
    expect(await shared.release(key, 'stale', WRITE)).toBe(false)
    expect(await shared.extend(key, 'stale', WRITE, 60_000)).toBe(false)
    expect(await shared.isLocked(key, WRITE)).toBe(true)
    expect(await shared.release(key, 'fresh', WRITE)).toBe(true)
  })

  test('release and extend need the same exclusivity, and only an unexpired lease', async () => {
    const key = uniqueKey()
    token(await shared.acquire(key, 'reader', READ, 60_000))
    expect(await shared.release(key, 'reader', WRITE)).toBe(false)
    expect(await shared.extend(key, 'reader', WRITE, 60_000)).toBe(false)
    expect(await shared.extend(key, 'reader', permits(2), 300)).toBe(true)
    await sleep(400)
    expect(await shared.release(key, 'reader', READ)).toBe(false)
    token(await shared.acquire(key, 'forever', READ, null))
    expect(await shared.extend(key, 'forever', READ, 100)).toBe(true)
    expect(await shared.extend(key, 'forever', READ, null)).toBe(true)
    expect(await shared.release(key, 'forever', READ)).toBe(true)
  })

  test('not re-entrant: an owner holding the key is refused in either mode', async () => {
    const key = uniqueKey()
    token(await shared.acquire(key, 'me', READ, 60_000))
    expect(await shared.acquire(key, 'me', READ, 60_000)).toMatchObject({ acquired: false })
    expect(await shared.acquire(key, 'me', WRITE, 60_000, PLACE)).toMatchObject({ acquired: false })
    expect((await rowOf(key))?.waiters).toEqual([])
  })

  test('a waiting writer blocks later readers, which queue behind it and come in after it', async () => {
    const key = uniqueKey()
    token(await shared.acquire(key, 'r1', READ, 60_000))
    expect(await shared.acquire(key, 'w', WRITE, 60_000, PLACE)).toMatchObject({ acquired: false, position: 0 })
    // A reader without a place is refused (no barging), one with a place queues behind the writer.
    expect(await shared.acquire(key, 'r2', READ, 60_000)).toMatchObject({ acquired: false })
    expect(await shared.acquire(key, 'r2', READ, 60_000, PLACE)).toMatchObject({ acquired: false, position: 1 })
    expect(await shared.acquire(key, 'w', WRITE, 60_000, PLACE)).toMatchObject({ acquired: false, position: 0 })
    expect(await shared.release(key, 'r1', READ)).toBe(true)
    expect(await shared.acquire(key, 'r2', READ, 60_000, PLACE)).toMatchObject({ acquired: false, position: 1 })
    token(await shared.acquire(key, 'w', WRITE, 60_000, PLACE))
    expect(await shared.acquire(key, 'r2', READ, 60_000, PLACE)).toMatchObject({ acquired: false, position: 0 })
    expect(await shared.release(key, 'w', WRITE)).toBe(true)
    token(await shared.acquire(key, 'r2', READ, 60_000, PLACE))
    expect((await rowOf(key))?.waiters).toEqual([])
  })

  test('a refusal reports when the first holding ends, none for leases without end', async () => {
    const key = uniqueKey()
    token(await shared.acquire(key, 'a', permits(2), 30_000))
    token(await shared.acquire(key, 'b', permits(2), 10_000))
    const refused = await shared.acquire(key, 'c', permits(2), 60_000)
    if (refused.acquired) throw new Error('granted beyond the limit')
    expect(refused.expiresIn).toBeGreaterThan(8_000)
    expect(refused.expiresIn).toBeLessThanOrEqual(10_000)
    const other = uniqueKey()
    token(await shared.acquire(other, 'w', WRITE, null))
    expect(await shared.acquire(other, 'r', READ, 60_000)).toEqual({ acquired: false })
  })

  test('a dead place is skipped: the waiter behind gets in once its lease ended on the server, not before', async () => {
    const key = uniqueKey()
    token(await shared.acquire(key, 'r1', READ, 60_000))
    expect(await shared.acquire(key, 'w', WRITE, 60_000, { lease: 300 })).toMatchObject({ position: 0 })
    expect(await shared.acquire(key, 'r2', READ, 60_000, PLACE)).toMatchObject({ acquired: false, position: 1 })
    await sleep(400)
    token(await shared.acquire(key, 'r2', READ, 60_000, PLACE))
    expect((await rowOf(key))?.waiters).toEqual([])
  })

  test('each attempt of a waiter renews its place lease on the server', async () => {
    const key = uniqueKey()
    token(await shared.acquire(key, 'holder', WRITE, 60_000))
    expect(await shared.acquire(key, 'head', WRITE, 60_000, { lease: 400 })).toMatchObject({ position: 0 })
    expect(await shared.acquire(key, 'next', READ, 60_000, PLACE)).toMatchObject({ position: 1 })
    await sleep(250)
    expect(await shared.acquire(key, 'head', WRITE, 60_000, { lease: 400 })).toMatchObject({ position: 0 })
    await sleep(250)
    // 500 ms after joining, 250 after its renewal: the head is still ahead.
    expect(await shared.acquire(key, 'next', READ, 60_000, PLACE)).toMatchObject({ position: 1 })
    await sleep(250)
    expect(await shared.acquire(key, 'next', READ, 60_000, PLACE)).toMatchObject({ position: 0 })
  })

  test('leaveQueue removes the place (idempotent) and lets those behind in', async () => {
    const key = uniqueKey()
    token(await shared.acquire(key, 'r1', READ, 60_000))
    expect(await shared.acquire(key, 'w', WRITE, 60_000, PLACE)).toMatchObject({ position: 0 })
    expect(await shared.acquire(key, 'r2', READ, 60_000, PLACE)).toMatchObject({ position: 1 })
    await shared.leaveQueue(key, 'w')
    await shared.leaveQueue(key, 'w')
    await shared.leaveQueue(uniqueKey(), 'w')
    token(await shared.acquire(key, 'r2', READ, 60_000, PLACE))
  })

  test('permits: limit N admits N, counting shared waiters queued ahead; each request uses its own limit', async () => {
    const key = uniqueKey()
    token(await shared.acquire(key, 'a', permits(2), 60_000))
    expect(await shared.acquire(key, 'q', WRITE, 60_000, PLACE)).toMatchObject({ position: 0 })
    await shared.leaveQueue(key, 'q')
    token(await shared.acquire(key, 'b', permits(2), 60_000))
    expect(await shared.acquire(key, 'c', permits(2), 60_000, PLACE)).toMatchObject({ position: 0 })
    // With a limit of 4, 2 holders + 1 shared waiter ahead leave room: a larger limit is judged by itself.
    token(await shared.acquire(key, 'd', permits(4), 60_000))
    // Limit 3: 3 holders already.
    expect(await shared.acquire(key, 'e', permits(3), 60_000)).toMatchObject({ acquired: false })
    // A reader (no limit) is only held back by writers.
    token(await shared.acquire(key, 'r', READ, 60_000))
    expect((await rowOf(key))?.holders.map(String)).toEqual(['a', 'b', 'd', 'r'])
  })

  test('fencing tokens rise across grants, releases, expiry, force release and the row being deleted', async () => {
    const key = uniqueKey()
    const tokens: number[] = []
    tokens.push(token(await shared.acquire(key, 'a', READ, 60_000)))
    tokens.push(token(await shared.acquire(key, 'b', permits(5), 60_000)))
    await shared.release(key, 'a', READ)
    await shared.release(key, 'b', READ)
    expect(await rowOf(key)).toBeUndefined()
    tokens.push(token(await shared.acquire(key, 'w', WRITE, 100)))
    await sleep(200)
    tokens.push(token(await shared.acquire(key, 'r', READ, 60_000)))
    await shared.forceRelease(key, READ)
    tokens.push(token(await shared.acquire(key, 'w', WRITE, 60_000)))
    expect([...tokens].sort((x, y) => x - y)).toEqual(tokens)
    expect(new Set(tokens).size).toBe(tokens.length)
  })

  test('storage stays bounded: empty rows go at once, abandoned ones with housekeeping, tokens still rise', async () => {
    const pruning = new PostgresStore({ connection: pool, tableName, listen: false, pruneAfter: 0, pruneInterval: false })
    const key = uniqueKey()
    const before = token(await pruning.shared!.acquire(key, 'crashed', WRITE, 50))
    await pruning.shared!.acquire(key, 'waiter', WRITE, 60_000, { lease: 50 })
    await sleep(150)
    expect(await rowOf(key)).toBeDefined()
    expect(await pruning.pruneExpired()).toBeGreaterThanOrEqual(1)
    expect(await rowOf(key)).toBeUndefined()
    expect(token(await pruning.shared!.acquire(key, 'next', WRITE, 60_000))).toBeGreaterThan(before)
    // A held row is never pruned.
    await pruning.pruneExpired()
    expect(await pruning.shared!.isLocked(key, WRITE)).toBe(true)
    await pruning.close()
  })

  test('mutex keys and shared keys are apart', async () => {
    const key = uniqueKey()
    expect((await store.acquire(key, 'm', 60_000)).acquired).toBe(true)
    token(await shared.acquire(key, 's', WRITE, 60_000))
    expect(await shared.release(key, 'm', WRITE)).toBe(false)
    expect(await store.release(key, 's')).toBe(false)
  })

  test('keys and owners are exact bytes: NUL, emoji, lone surrogates, quotes', async () => {
    for (const key of [`a\u0000b${uniqueKey()}`, `🔒'; DROP TABLE x; --${uniqueKey()}`, `\uD800${uniqueKey()}`]) {
      token(await shared.acquire(key, 'o\u0000🔒\uDC00', WRITE, 60_000))
      expect(await shared.acquire(`${key}x`, 'other', WRITE, 60_000)).toMatchObject({ acquired: true })
      expect(await shared.release(key, 'o\u0000🔒', WRITE)).toBe(false)
      expect(await shared.release(key, 'o\u0000🔒\uDC00', WRITE)).toBe(true)
    }
  })

  test('stores starting together on a new table create it once, without errors', async () => {
    const fresh = uniqueTableName('verrou_shared_new')
    tables.push(fresh)
    const stores = Array.from({ length: 6 }, () => new PostgresStore({ connection: pool, tableName: fresh, listen: false }))
    const key = uniqueKey()
    const results = await Promise.all(stores.map((s, i) => s.shared!.acquire(key, `o${i}`, permits(2), 60_000)))
    expect(results.filter((result) => result.acquired)).toHaveLength(2)
    await Promise.all(stores.map((s) => s.close()))
  })

  test('the longest table name still fits the shared table and function names', async () => {
    const longest = `verrou_${'x'.repeat(44)}`
    tables.push(longest)
    const s = new PostgresStore({ connection: pool, tableName: longest, listen: false })
    const key = uniqueKey()
    token(await s.shared!.acquire(key, 'a', READ, 60_000))
    const { rows } = await pool.query('SELECT to_regclass($1) AS t, to_regproc($2) AS f', [
      `"${longest}_shared"`,
      `"${longest}_shared_v1"`,
    ])
    expect(rows[0].t).not.toBeNull()
    expect(rows[0].f).not.toBeNull()
    await s.close()
  })

  test("a table name containing the function body's dollar-quote tag still creates a working function", async () => {
    const dollars = `v$verrou$_${uniqueTableName('t').slice(2)}`
    tables.push(dollars)
    const s = new PostgresStore({ connection: pool, tableName: dollars, listen: false })
    const key = uniqueKey()
    token(await s.shared!.acquire(key, 'a', WRITE, 60_000))
    expect(await s.shared!.isLocked(key, READ)).toBe(true)
    await s.close()
  })

  test('autoCreateTable: false uses a table created by hand, and fails with a storage error when it is missing', async () => {
    const manual = uniqueTableName('verrou_shared_manual')
    tables.push(manual)
    const s = new PostgresStore({ connection: pool, tableName: manual, autoCreateTable: false, listen: false })
    await expect(s.shared!.acquire(uniqueKey(), 'a', READ, 1000)).rejects.toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    await pool.query(sharedLocksSql(manual))
    token(await s.shared!.acquire(uniqueKey(), 'a', READ, 1000))
  })

  test('a role that may not create anything uses shared locks created for it, autoCreateTable left on', async () => {
    const granted = uniqueTableName('verrou_shared_granted')
    tables.push(granted)
    const role = uniqueTableName('verrou_shared_role')
    await pool.query(sharedLocksSql(granted))
    await pool.query(`CREATE ROLE "${role}" LOGIN; REVOKE CREATE ON SCHEMA public FROM "${role}";
      GRANT SELECT, INSERT, UPDATE, DELETE ON "${granted}_shared" TO "${role}";
      GRANT USAGE ON SEQUENCE "${granted}_fencing_seq" TO "${role}"`)
    const restricted = createPool({ user: role, connectionString: undefined })
    try {
      // Its CREATE OR REPLACE FUNCTION is refused (42501): the store checks that everything exists instead.
      const s = new PostgresStore({ connection: restricted, tableName: granted, listen: false })
      const key = uniqueKey()
      token(await s.shared!.acquire(key, 'a', permits(1), 60_000))
      expect(await s.shared!.acquire(key, 'b', permits(1), 60_000)).toMatchObject({ acquired: false })
      expect(await s.shared!.release(key, 'a', permits(1))).toBe(true)
      const missing = new PostgresStore({ connection: restricted, tableName: uniqueTableName('verrou_absent'), listen: false })
      await expect(missing.shared!.acquire(key, 'a', READ, 60_000)).rejects.toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    } finally {
      await restricted.end()
      await pool.query(`DROP OWNED BY "${role}"; DROP ROLE "${role}"`)
    }
  })

  test('an unreachable server is a storage error from every operation, never an answer', async () => {
    const unreachable = createPool({ ...connectionConfig(), connectionString: undefined, host: '127.0.0.1', port: 1 })
    const s = new PostgresStore({ connection: unreachable, tableName, listen: false }).shared!
    const key = uniqueKey()
    for (const call of [
      () => s.acquire(key, 'a', READ, 1000),
      () => s.release(key, 'a', READ),
      () => s.extend(key, 'a', READ, 1000),
      () => s.forceRelease(key, WRITE),
      () => s.isLocked(key, READ),
      () => s.leaveQueue(key, 'a'),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    }
    await unreachable.end()
  })
})
