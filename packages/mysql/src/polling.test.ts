import { randomUUID } from 'node:crypto'
import type { Connection, RowDataPacket } from 'mysql2/promise'
import { afterAll, describe, expect, test } from 'vitest'
import { createTestConnection, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { mysqlStore } from './index.js'
import { keyHash, toBytes } from './key_bytes.js'

const pool = createTestPool()
const tableName = uniqueTableName('polling')
const connections: Connection[] = []
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const newKey = () => `verrou:mysql:polling:${randomUUID()}`

afterAll(async () => {
  await dropTables(pool, tableName)
  await Promise.all(connections.map((each) => each.end()))
  await pool.end()
})

/** A store on a connection of its own, and the rows it has written and the statements it has run since `mark`. */
async function watchedStore() {
  const db = await createTestConnection()
  connections.push(db)
  const store = mysqlStore({ connection: db, tableName, pruneInterval: false })
  const status = async () => {
    const [rows] = await db.query<RowDataPacket[]>(
      "SHOW SESSION STATUS WHERE Variable_name IN ('Handler_write', 'Handler_update', 'Handler_delete', 'Com_stmt_execute')",
    )
    const value = (name: string) => Number(rows.find((row) => row.Variable_name === name)?.Value)
    return {
      writes: value('Handler_write') + value('Handler_update') + value('Handler_delete'),
      executes: value('Com_stmt_execute'),
    }
  }
  return { store, status }
}

describe('a waiter polling MySQL', () => {
  test('polls soon after its place was written with one read, which writes no row and answers as the queue statement would', async () => {
    const holder = mysqlStore({ connection: pool, tableName })
    const { store, status } = await watchedStore()
    const key = newKey()
    expect(await holder.acquire(key, 'holder', 10_000)).toMatchObject({ acquired: true })
    expect(await holder.acquire(key, 'first', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
    expect(await store.acquire(key, 'second', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 1 })
    // Warm up the prepared statement, then count.
    await store.acquire(key, 'second', 10_000, { lease: 5_000 })
    const before = await status()
    const polled = await store.acquire(key, 'second', 10_000, { lease: 5_000 })
    const after = await status()
    expect(polled).toMatchObject({ acquired: false, position: 1 })
    expect(polled.acquired === false && polled.expiresIn).toBeGreaterThan(8_000)
    // The SHOW itself writes nothing; the poll is one statement.
    expect(after.writes - before.writes).toBe(0)
    expect(after.executes - before.executes).toBe(1)
  })

  test('a release hands the lock to the head, whose next poll is one read that writes nothing, then one claim', async () => {
    const holder = mysqlStore({ connection: pool, tableName })
    const { store, status } = await watchedStore()
    const key = newKey()
    const held = await holder.acquire(key, 'holder', 10_000)
    expect(await store.acquire(key, 'head', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
    expect(await store.acquire(key, 'head', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
    expect(await holder.release(key, 'holder')).toBe(true)
    const before = await status()
    const taken = await store.acquire(key, 'head', 10_000, { lease: 5_000 })
    expect(taken.acquired).toBe(true)
    expect(taken.acquired && held.acquired && taken.fencingToken > held.fencingToken).toBe(true)
    // Until the claim lands the lease is what is left of the place's (5 s), then the 10 s asked for.
    expect(taken.acquired && taken.handedOver?.lease).toBeLessThanOrEqual(5_000)
    expect(taken.acquired && (await taken.handedOver?.claimed)).toBe(true)
    // The read, then the claim (the SHOW between them is not a prepared statement).
    expect((await status()).executes - before.executes).toBe(2)
    // Its place went with the grant: nobody stands ahead of a newcomer once it releases.
    expect(await store.release(key, 'head')).toBe(true)
    expect(await holder.acquire(key, 'newcomer', 10_000)).toMatchObject({ acquired: true })
  })

  test('the second in line, told it leads by a read, is handed the lock by the next release', async () => {
    const holder = mysqlStore({ connection: pool, tableName })
    const { store, status } = await watchedStore()
    const key = newKey()
    await holder.acquire(key, 'holder', 10_000)
    expect(await holder.acquire(key, 'head', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
    expect(await store.acquire(key, 'second', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 1 })
    await holder.leaveQueue(key, 'head')
    // A read shows it first; the release hands it the lock, and its next read says so.
    expect(await store.acquire(key, 'second', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
    await holder.release(key, 'holder')
    const before = await status()
    const taken = await store.acquire(key, 'second', 10_000, { lease: 5_000 })
    expect(taken).toMatchObject({ acquired: true })
    expect(taken.acquired && (await taken.handedOver?.claimed)).toBe(true)
    expect((await status()).executes - before.executes).toBe(2)
  })

  test('a poll never lets the head of the queue be jumped: the read only says when to ask', async () => {
    const holder = mysqlStore({ connection: pool, tableName })
    const { store } = await watchedStore()
    const key = newKey()
    await holder.acquire(key, 'holder', 10_000)
    expect(await holder.acquire(key, 'head', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
    expect(await store.acquire(key, 'second', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 1 })
    await holder.release(key, 'holder')
    // The release handed the lock to the head: the second in line now leads, and is refused, read or not.
    expect(await store.acquire(key, 'second', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
    expect(await holder.acquire(key, 'head', 10_000, { lease: 5_000 })).toMatchObject({ acquired: true })
  })

  test('a waiter whose place was removed behind its back takes a place again at its next poll', async () => {
    const holder = mysqlStore({ connection: pool, tableName })
    const { store } = await watchedStore()
    const key = newKey()
    await holder.acquire(key, 'holder', 10_000)
    expect(await store.acquire(key, 'waiter', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
    // Another process (no memory of this store's places) removes it, as a give-up sent twice would.
    await holder.leaveQueue(key, 'waiter')
    expect(await holder.acquire(key, 'other', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
    // The read sees no live place of its own: the queue statement runs, and puts it behind `other`.
    expect(await store.acquire(key, 'waiter', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 1 })
  })

  test('the head polling within a quarter of its place lease changes nothing in the row, so it has no commit to flush', async () => {
    const holder = mysqlStore({ connection: pool, tableName })
    const { store } = await watchedStore()
    const key = newKey()
    await holder.acquire(key, 'holder', 10_000)
    const lease = { lease: 5_000 }
    expect(await store.acquire(key, 'head', 10_000, lease)).toMatchObject({ acquired: false, position: 0 })
    expect(await holder.acquire(key, 'second', 10_000, lease)).toMatchObject({ acquired: false, position: 1 })
    const rowOf = async () => {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT HEX(wait_queue) AS queue, queue_ends_at, expires_at, fencing_token, HEX(lock_owner) AS owner FROM \`${tableName}\` WHERE key_hash = ?`,
        [keyHash(toBytes(key))],
      )
      return rows[0]
    }
    const before = await rowOf()
    // Apart in time, so that a place renewed by a poll would get a later lease end.
    for (let poll = 0; poll < 3; poll++) {
      await sleep(20)
      expect(await store.acquire(key, 'head', 10_000, lease)).toMatchObject({ acquired: false, position: 0 })
    }
    expect(await rowOf()).toEqual(before)
    // The place is the same one: the release hands the lock to the head, before the second in line.
    await holder.release(key, 'holder')
    expect(await holder.acquire(key, 'second', 10_000, lease)).toMatchObject({ acquired: false, position: 0 })
    expect(await store.acquire(key, 'head', 10_000, lease)).toMatchObject({ acquired: true })
  })

  test('once a quarter of its place lease has passed, a poll writes again and so renews the place', async () => {
    const holder = mysqlStore({ connection: pool, tableName })
    const { store, status } = await watchedStore()
    const key = newKey()
    await holder.acquire(key, 'holder', 10_000)
    const lease = { lease: 400 }
    expect(await store.acquire(key, 'waiter', 10_000, lease)).toMatchObject({ acquired: false, position: 0 })
    // Poll past a quarter of the lease each time, for longer than the lease: the place must stay alive.
    for (let poll = 0; poll < 6; poll++) {
      await sleep(150)
      const before = await status()
      expect(await store.acquire(key, 'waiter', 10_000, lease)).toMatchObject({ acquired: false, position: 0 })
      const after = await status()
      expect(after.writes - before.writes, `poll ${poll}`).toBeGreaterThan(0)
    }
    // Still first in line after 900 ms with a 400 ms place lease: a newcomer queues behind it.
    expect(await holder.acquire(key, 'newcomer', 10_000, lease)).toMatchObject({ acquired: false, position: 1 })
  })
})
