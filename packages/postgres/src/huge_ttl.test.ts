import { afterAll, describe, expect, test } from 'vitest'
import { createPool, dropTable, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

const pool = createPool()
const tableName = uniqueTableName('verrou_huge_ttl')
const store = new PostgresStore({ connection: pool, tableName, listen: false })

afterAll(async () => {
  await dropTable(pool, tableName)
  await pool.end()
})

/** Every ttl the contract accepts, up to Number.MAX_SAFE_INTEGER ms (about 285,000 years). */
const HUGE_TTLS = [2 ** 31, 2 ** 40, 10 ** 15, 2 ** 52, Number.MAX_SAFE_INTEGER]

describe.each(HUGE_TTLS)('a lease of %d ms', (ttl) => {
  test('is held, refuses rivals with a sane expiresIn, extends, releases and is taken again', async () => {
    const key = uniqueKey('huge')
    const first = await store.acquire(key, 'holder', ttl)
    expect(first.acquired).toBe(true)
    for (const rivalTtl of [1_000, ttl]) {
      const refused = await store.acquire(key, 'rival', rivalTtl)
      const expiresIn = refused.acquired ? 0 : refused.expiresIn
      expect(Number.isSafeInteger(expiresIn)).toBe(true)
      expect(expiresIn).toBeLessThanOrEqual(ttl)
      expect(expiresIn).toBeGreaterThan(ttl - 60_000)
    }
    expect(await store.isLocked(key)).toBe(true)
    expect(await store.extend(key, 'rival', ttl)).toBe(false)
    expect(await store.extend(key, 'holder', ttl)).toBe(true)
    const { rows } = await pool.query(
      `SELECT extract(epoch FROM expires_at - clock_timestamp()) * 1000 AS remaining FROM "${tableName}" WHERE key = $1`,
      [Buffer.from(key)],
    )
    expect(Number(rows[0].remaining)).toBeGreaterThan(ttl - 60_000)
    expect(await store.release(key, 'rival')).toBe(false)
    expect(await store.release(key, 'holder')).toBe(true)
    const second = await store.acquire(key, 'rival', ttl)
    expect(second.acquired && first.acquired && second.fencingToken > first.fencingToken).toBe(true)
    await store.forceRelease(key)
    expect(await store.isLocked(key)).toBe(false)
  })
})
