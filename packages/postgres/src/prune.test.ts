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

  test('housekeeping runs in the background from the first operation: drains a backlog at once, then every pruneInterval, until close()', async () => {
    const tableName = freshTable()
    const seed = new PostgresStore({ connection: pool, tableName, pruneInterval: false, listen: false })
    const endRows = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const key = uniqueKey()
        await seed.acquire(key, 'a', 60_000)
        await seed.release(key, 'a')
      }
    }
    await endRows(5)
    const store = new PostgresStore({
      connection: pool,
      tableName,
      pruneAfter: 0,
      pruneInterval: 200,
      pruneBatchSize: 2,
      listen: false,
    })
    // Not even an acquire: any first operation starts it, and full batches follow one another at once.
    await store.isLocked(uniqueKey())
    await waitForRows(tableName, 0)
    // Rows that end later go without any further call on this store.
    await endRows(3)
    await waitForRows(tableName, 0)
    await store.close()
    await endRows(1)
    await sleep(600)
    expect(await rowCount(tableName)).toBe(1)

    // The pause between runs is pruneInterval: a row that ends just after a run waits for the next.
    const spaced = new PostgresStore({ connection: pool, tableName, pruneAfter: 0, pruneInterval: 60_000, listen: false })
    await spaced.isLocked(uniqueKey())
    await waitForRows(tableName, 0)
    await endRows(1)
    await sleep(300)
    expect(await rowCount(tableName)).toBe(1)
    await spaced.close()
  })

  test('housekeeping stops by itself once the pool it uses is ended', async () => {
    const own = createPool()
    const store = new PostgresStore({ connection: own, tableName: freshTable(), pruneInterval: 0, listen: false })
    let runs = 0
    const prune = store.pruneExpired.bind(store)
    store.pruneExpired = () => {
      runs++
      return prune()
    }
    await store.isLocked(uniqueKey())
    await sleep(100)
    await own.end()
    await sleep(50)
    const afterEnd = runs
    // A failed run pauses a second: left running, it would have tried two or three more times by now.
    await sleep(2_500)
    // At most the run that was in flight when the pool ended.
    expect(runs - afterEnd).toBeLessThanOrEqual(1)
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
