import { afterAll, describe, expect, test } from 'vitest'
import { createPool, dropTable, uniqueKey, uniqueTableName } from '../test/postgres.js'
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

describe('acquire', () => {
  test('one holder at a time, not re-entrant, tokens increase across release', async () => {
    const key = uniqueKey()
    const first = await store.acquire(key, 'a', 10_000)
    expect(first.acquired).toBe(true)
    expect(await other.acquire(key, 'b', 10_000)).toMatchObject({ acquired: false })
    expect(await store.acquire(key, 'a', 10_000)).toMatchObject({ acquired: false })
    expect(await store.release(key, 'a')).toBe(true)
    const second = await other.acquire(key, 'b', 10_000)
    expect(second.acquired).toBe(true)
    if (!first.acquired || !second.acquired) throw new Error('unreachable')
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken)
  })
})
