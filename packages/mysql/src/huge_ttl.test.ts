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

describe('waiting behind huge leases, with huge place leases', () => {
  test.each(HUGE_TTLS)('a place lease of %d ms is kept, and the refusal never says more than fits', async (lease) => {
    const key = `huge:${randomUUID()}`
    expect((await store.acquire(key, 'holder', lease)).acquired).toBe(true)
    const refused = await store.acquire(key, 'waiter', 1_000, { lease })
    expect(refused).toMatchObject({ acquired: false, position: 0 })
    // Past 2^32-1 ms the time left no longer fits beside the position: it is left out, never wrong.
    const expiresIn = refused.acquired ? undefined : refused.expiresIn
    if (lease < 2 ** 32 - 1) expect(expiresIn).toBeGreaterThan(lease - 60_000)
    else expect(expiresIn).toBeUndefined()
    expect(await store.acquire(key, 'second', 1_000, { lease })).toMatchObject({ acquired: false, position: 1 })
    await store.forceRelease(key)
    expect(await store.acquire(key, 'waiter', 1_000, { lease })).toMatchObject({ acquired: true })
    expect(await store.acquire(key, 'second', 1_000, { lease })).toMatchObject({ acquired: false, position: 0 })
    await store.leaveQueue(key, 'second')
    await store.release(key, 'waiter')
  })
})
