import { randomUUID } from 'node:crypto'
import type { RowDataPacket } from 'mysql2/promise'
import { afterAll, describe, expect, test } from 'vitest'
import { createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { mysqlStore } from './index.js'
import { keyHash, toBytes } from './key_bytes.js'
import { MAX_REPORTED_EXPIRES_IN } from './sql.js'

const pool = createTestPool()
const tableName = uniqueTableName('huge_ttl')
const store = mysqlStore({ connection: pool, tableName, pruneInterval: false })

afterAll(async () => {
  await dropTables(pool, tableName)
  await pool.end()
})

/** Every ttl the contract accepts, up to Number.MAX_SAFE_INTEGER ms (about 285,000 years). */
const HUGE_TTLS = [2 ** 31, 2 ** 40, 10 ** 15, 2 ** 52, Number.MAX_SAFE_INTEGER]

describe.each(HUGE_TTLS)('a lease of %d ms', (ttl) => {
  test('is held, refuses rivals with a sane expiresIn, extends, releases and is taken again', async () => {
    const key = `huge:${randomUUID()}`
    const first = await store.acquire(key, 'holder', ttl)
    expect(first.acquired).toBe(true)
    for (const rivalTtl of [1_000, ttl]) {
      const refused = await store.acquire(key, 'rival', rivalTtl)
      expect(refused.acquired).toBe(false)
      // Capped where the OK packet's integer can carry it; never more than the lease, never a small number.
      const expiresIn = refused.acquired ? 0 : refused.expiresIn
      expect(Number.isSafeInteger(expiresIn)).toBe(true)
      expect(expiresIn).toBeLessThanOrEqual(ttl)
      expect(expiresIn).toBeGreaterThan(Math.min(ttl, MAX_REPORTED_EXPIRES_IN) - 60_000)
    }
    expect(await store.isLocked(key)).toBe(true)
    expect(await store.extend(key, 'rival', ttl)).toBe(false)
    expect(await store.extend(key, 'holder', ttl)).toBe(true)
    const [rows] = await pool.query<RowDataPacket[]>(
      `SELECT expires_at - (TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000) AS remaining FROM \`${tableName}\` WHERE key_hash = ?`,
      [keyHash(toBytes(key))],
    )
    expect(Number(rows[0]!.remaining)).toBeGreaterThan(ttl - 60_000)
    expect(await store.release(key, 'rival')).toBe(false)
    expect(await store.release(key, 'holder')).toBe(true)
    const second = await store.acquire(key, 'rival', ttl)
    expect(second.acquired && first.acquired && second.fencingToken > first.fencingToken).toBe(true)
    await store.forceRelease(key)
    expect(await store.isLocked(key)).toBe(false)
  })
})
