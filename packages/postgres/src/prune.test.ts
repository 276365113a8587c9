import { afterAll, describe, expect, test } from 'vitest'
import { createPool, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

const pool = createPool()
const tables: string[] = []

function freshTable(): string {
  const name = uniqueTableName('verrou_prune')
  tables.push(name)
  return name
}

afterAll(async () => {
  for (const table of tables) await dropTable(pool, table)
  await pool.end()
})

async function rowCount(tableName: string): Promise<number> {
  return (await pool.query(`SELECT count(*)::int AS n FROM "${tableName}"`)).rows[0].n
}

function tokenOf(result: Awaited<ReturnType<PostgresStore['acquire']>>): number {
  if (!result.acquired) throw new Error('expected the lock to be acquired')
  return result.fencingToken
}

describe('housekeeping', () => {
  test('pruneExpired deletes only rows whose lease ended more than pruneAfter ago; held rows stay', async () => {
    const tableName = freshTable()
    const store = new PostgresStore({ connection: pool, tableName, pruneAfter: 200, pruneInterval: false, listen: false })
    const released = uniqueKey('released')
    const expired = uniqueKey('expired')
    const held = uniqueKey('held')
    const forever = uniqueKey('forever')
    await store.acquire(released, 'a', 60_000)
    await store.release(released, 'a')
    await store.acquire(expired, 'a', 50)
    await store.acquire(held, 'a', 60_000)
    await store.acquire(forever, 'a', null)

    expect(await store.pruneExpired()).toBe(0) // ended less than 200 ms ago: kept
    await sleep(300)
    expect(await store.pruneExpired()).toBe(2)
    expect(await rowCount(tableName)).toBe(2)
    expect(await store.isLocked(held)).toBe(true)
    expect(await store.isLocked(forever)).toBe(true)
  })

  test('fencing tokens keep increasing for a key whose row was pruned', async () => {
    const tableName = freshTable()
    const store = new PostgresStore({ connection: pool, tableName, pruneAfter: 0, pruneInterval: false, listen: false })
    const key = uniqueKey()
    const before = tokenOf(await store.acquire(key, 'a', 60_000))
    await store.release(key, 'a')
    await sleep(5)
    expect(await store.pruneExpired()).toBe(1)
    expect(await rowCount(tableName)).toBe(0)
    const after = tokenOf(await store.acquire(key, 'b', 60_000))
    expect(after).toBeGreaterThan(before)
  })

  test('each call deletes at most pruneBatchSize rows', async () => {
    const tableName = freshTable()
    const store = new PostgresStore({
      connection: pool,
      tableName,
      pruneAfter: 0,
      pruneInterval: false,
      pruneBatchSize: 3,
      listen: false,
    })
    for (let i = 0; i < 7; i++) {
      const key = uniqueKey()
      await store.acquire(key, 'a', 60_000)
      await store.release(key, 'a')
    }
    await sleep(5)
    expect(await store.pruneExpired()).toBe(3)
    expect(await store.pruneExpired()).toBe(3)
    expect(await store.pruneExpired()).toBe(1)
    expect(await store.pruneExpired()).toBe(0)
  })

  test('acquire prunes opportunistically, at most once per pruneInterval, and catches up after a full batch', async () => {
    const tableName = freshTable()
    const store = new PostgresStore({
      connection: pool,
      tableName,
      pruneAfter: 0,
      pruneInterval: 60_000,
      pruneBatchSize: 2,
      listen: false,
    })
    const seed = new PostgresStore({ connection: pool, tableName, pruneInterval: false, listen: false })
    for (let i = 0; i < 5; i++) {
      const key = uniqueKey()
      await seed.acquire(key, 'a', 60_000)
      await seed.release(key, 'a')
    }
    await sleep(5)
    const live = uniqueKey('live')
    // Each acquire may start one bounded run; a full batch lets the next acquire start another at once.
    await store.acquire(live, 'a', 60_000)
    await waitForRows(tableName, 4)
    await store.acquire(live, 'a', 60_000)
    await waitForRows(tableName, 2)
    await store.acquire(live, 'a', 60_000)
    await waitForRows(tableName, 1)
    // The last run deleted less than a batch: the interval applies again, so no further run starts.
    const key = uniqueKey()
    await seed.acquire(key, 'a', 60_000)
    await seed.release(key, 'a')
    await sleep(5)
    await store.acquire(live, 'a', 60_000)
    await sleep(100)
    expect(await rowCount(tableName)).toBe(2)
  })
})

/** Waits for a background run to have deleted down to `expected` rows and to have finished. */
async function waitForRows(tableName: string, expected: number): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    if ((await rowCount(tableName)) === expected) {
      // The delete is visible a moment before the store has read its reply and counted the run as over.
      await sleep(20)
      return
    }
    await sleep(10)
  }
  expect(await rowCount(tableName)).toBe(expected)
}
