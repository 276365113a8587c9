import { randomUUID } from 'node:crypto'
import { errors, LockFactory } from '@verrou/core'
import type { Connection, RowDataPacket } from 'mysql2/promise'
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest'
import { createTestConnection, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { mysqlStore } from './index.js'
import { keyHash, toBytes } from './key_bytes.js'
import { REFUSED_BASE } from './sql.js'

const pool = createTestPool()
const tableName = uniqueTableName('store')
const connections: Connection[] = []
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const newKey = () => `verrou:mysql:${randomUUID()}`

async function connection(options: Parameters<typeof createTestConnection>[0] = {}): Promise<Connection> {
  const created = await createTestConnection(options)
  connections.push(created)
  return created
}

afterEach(() => {
  vi.restoreAllMocks()
})

afterAll(async () => {
  await dropTables(pool, tableName)
  await Promise.all(connections.map((each) => each.end()))
  await pool.end()
})

describe('MysqlStore', () => {
  test('a refused acquire reports the time left on the holder lease, measured by the server', async () => {
    const store = mysqlStore({ connection: pool, tableName })
    const key = newKey()
    expect(await store.acquire(key, 'holder', 5_000)).toMatchObject({ acquired: true })
    const refused = await store.acquire(key, 'waiter', 5_000)
    expect(refused.acquired).toBe(false)
    const expiresIn = refused.acquired ? undefined : refused.expiresIn
    expect(expiresIn).toBeGreaterThan(4_000)
    expect(expiresIn).toBeLessThanOrEqual(5_000)

    const forever = newKey()
    await store.acquire(forever, 'holder', null)
    expect(await store.acquire(forever, 'waiter', 1_000)).toEqual({ acquired: false })
  })

  test('the client clock is never used: an hour of skew either way changes no decision', async () => {
    const store = mysqlStore({ connection: pool, tableName })
    const realNow = Date.now.bind(Date)
    for (const skew of [60 * 60_000, -60 * 60_000]) {
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skew)
      const key = newKey()
      expect(await store.acquire(key, 'a', 1_000)).toMatchObject({ acquired: true })
      expect(await store.isLocked(key)).toBe(true)
      const refused = await store.acquire(key, 'b', 1_000)
      expect(refused).toMatchObject({ acquired: false })
      expect(refused.acquired ? 0 : refused.expiresIn).toBeLessThanOrEqual(1_000)
      await sleep(300)
      expect(await store.extend(key, 'a', 1_500)).toBe(true)
      expect(await store.extend(key, 'b', 1_500)).toBe(false)
      await sleep(850)
      // Past the first lease but inside the extension, which counted from the server's now.
      expect(await store.isLocked(key)).toBe(true)
      await sleep(750)
      expect(await store.isLocked(key)).toBe(false)
      expect(await store.extend(key, 'a', 1_000)).toBe(false)
      expect(await store.release(key, 'a')).toBe(false)
      expect(await store.acquire(key, 'b', 1_000)).toMatchObject({ acquired: true })
      vi.restoreAllMocks()
    }
  })

  test('the session time zone does not move expiries', async () => {
    const west = await connection()
    const east = await connection()
    await west.query("SET time_zone = '-11:00'")
    await east.query("SET time_zone = '+13:00'")
    const westStore = mysqlStore({ connection: west, tableName })
    const eastStore = mysqlStore({ connection: east, tableName })
    const key = newKey()
    expect(await westStore.acquire(key, 'west', 1_000)).toMatchObject({ acquired: true })
    const refused = await eastStore.acquire(key, 'east', 1_000)
    expect(refused.acquired ? 0 : refused.expiresIn).toBeGreaterThan(500)
    expect(await eastStore.isLocked(key)).toBe(true)
    await sleep(1_100)
    expect(await eastStore.isLocked(key)).toBe(false)
    expect(await eastStore.acquire(key, 'east', 1_000)).toMatchObject({ acquired: true })
  })

  test('every lock operation is one statement on the server; taking a place or meeting a queue not seen lately, two', async () => {
    const db = await connection()
    const store = mysqlStore({ connection: db, tableName, pruneInterval: false })
    // Another process on the same connection: it has not seen the queue `store` made.
    const elsewhere = mysqlStore({ connection: db, tableName, pruneInterval: false })
    // And one that never meets a queue: its releases try the light statement first.
    const unqueued = mysqlStore({ connection: db, tableName, pruneInterval: false })
    const statusOf = async () => {
      const [rows] = await db.query<RowDataPacket[]>(
        "SHOW SESSION STATUS WHERE Variable_name IN ('Questions', 'Com_stmt_prepare', 'Com_stmt_execute')",
      )
      return Object.fromEntries(rows.map((row) => [row.Variable_name, Number(row.Value)]))
    }
    // [name, statements, run]
    const operations: Array<[string, number, (key: string) => Promise<unknown>]> = [
      ['acquire', 1, (key) => store.acquire(key, 'o', 10_000)],
      ['refused acquire', 1, (key) => store.acquire(key, 'other', 10_000)],
      // The plain statement sees a place must be taken and passes the call to the queue statement.
      ['acquire that joins the queue', 2, (key) => store.acquire(key, 'other', 10_000, { lease: 2_000 })],
      ['acquire that renews a place', 1, (key) => store.acquire(key, 'other', 10_000, { lease: 2_000 })],
      ['acquire that meets a queue', 2, (key) => elsewhere.acquire(key, 'third', 10_000)],
      // It saw that queue: it goes straight to the queue statement.
      ['acquire that meets a queue seen lately', 1, (key) => elsewhere.acquire(key, 'third', 10_000)],
      ['leaveQueue', 1, (key) => store.leaveQueue(key, 'other')],
      ['acquire, the queue gone', 1, (key) => store.acquire(key, 'third', 10_000)],
      ['acquire, the queue gone, by the store that saw it lately', 1, (key) => elsewhere.acquire(key, 'third', 10_000)],
      ['extend', 1, (key) => store.extend(key, 'o', 10_000)],
      ['isLocked', 1, (key) => store.isLocked(key)],
      // `store` saw the queue lately: the full statement at once.
      ['release', 1, (key) => store.release(key, 'o')],
      ['forceRelease', 1, (key) => store.forceRelease(key)],
      ['acquire by a store that saw no queue', 1, (key) => unqueued.acquire(key, 'fourth', 10_000)],
      // The light statement refuses a lease not ours, and the full one decides.
      ['release of a lease not ours', 2, (key) => unqueued.release(key, 'stranger')],
      ['release with no queue: the light statement alone', 1, (key) => unqueued.release(key, 'fourth')],
    ]
    // Warm up: mysql2 prepares each statement once per connection and caches it.
    const warmKey = newKey()
    for (const [, , run] of operations) await run(warmKey)
    const key = newKey()
    for (const [name, statements, run] of operations) {
      const before = await statusOf()
      await run(key)
      const after = await statusOf()
      // The SHOW itself is one question; each statement of the operation is one more.
      expect({ name, questions: after.Questions! - before.Questions! }).toEqual({ name, questions: 1 + statements })
      expect({ name, executes: after.Com_stmt_execute! - before.Com_stmt_execute! }).toEqual({ name, executes: statements })
      expect({ name, prepares: after.Com_stmt_prepare! - before.Com_stmt_prepare! }).toEqual({ name, prepares: 0 })
    }
  })

  test('a key whose row the store just saw is decided without the floor; a row gone behind its back is inserted again', async () => {
    const table = uniqueTableName('seen')
    const db = await connection()
    try {
      const store = mysqlStore({ connection: db, tableName: table, pruneInterval: false })
      const executes = async () => {
        const [rows] = await db.query<RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Com_stmt_execute'")
        return Number(rows[0]!.Value)
      }
      const seen = newKey()
      const first = await store.acquire(seen, 'a', 10_000)
      expect(first.acquired).toBe(true)
      expect(await store.release(seen, 'a')).toBe(true)
      // Another transaction holds the floor row: any statement that reads it waits, here 1 s, then fails.
      await db.query('SET SESSION innodb_lock_wait_timeout = 1')
      const blocker = await connection()
      await blocker.query('BEGIN')
      await blocker.query(`SELECT fencing_token FROM \`${table}_floor\` WHERE id = 1 FOR UPDATE`)
      try {
        const again = await store.acquire(seen, 'b', 10_000)
        expect(again).toEqual({ acquired: true, fencingToken: (first.acquired ? first.fencingToken : 0) + 1 })
        expect((await store.acquire(seen, 'c', 10_000)).acquired).toBe(false)
        // A store that never saw the row sends the INSERT, which reads the floor even when the row exists.
        const stranger = mysqlStore({ connection: db, tableName: table, pruneInterval: false })
        await expect(stranger.acquire(seen, 'd', 10_000)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
      } finally {
        await blocker.query('ROLLBACK')
      }
      const stranger = mysqlStore({ connection: db, tableName: table, pruneInterval: false })
      const forever = newKey()
      expect((await stranger.acquire(forever, 'a', null)).acquired).toBe(true)
      // Refused through the INSERT (a store that never saw the row) and through the UPDATE, the same answer.
      expect(await store.acquire(forever, 'b', 10_000)).toEqual({ acquired: false })
      expect(await store.acquire(forever, 'b', 10_000)).toEqual({ acquired: false })

      // The row goes behind the store's back (as if a pruner's clock had jumped), after the floor covers it.
      expect(await store.release(seen, 'b')).toBe(true)
      await db.query(`UPDATE \`${table}_floor\` SET fencing_token = 500`)
      await db.query(`DELETE FROM \`${table}\` WHERE key_hash = ?`, [keyHash(toBytes(seen))])
      expect(await store.extend(forever, 'a', null)).toBe(true)
      // That statement left a LAST_INSERT_ID on this connection; the UPDATE that matches nothing must not
      // report it as its own. It finds no row, and the INSERT takes the key above the floor: two statements.
      const before = await executes()
      expect(await store.acquire(seen, 'e', 10_000)).toEqual({ acquired: true, fencingToken: 501 })
      expect((await executes()) - before).toBe(2)
      expect(await store.release(seen, 'e')).toBe(true)
    } finally {
      await dropTables(db, table)
    }
  })

  test('answers are right without the FOUND_ROWS client flag too', async () => {
    const db = await connection({ flags: ['-FOUND_ROWS'] })
    const store = mysqlStore({ connection: db, tableName })
    const key = newKey()
    expect(await store.acquire(key, 'a', null)).toMatchObject({ acquired: true })
    expect(await store.acquire(key, 'b', null)).toEqual({ acquired: false })
    expect(await store.acquire(key, 'a', null)).toEqual({ acquired: false })
    // Unchanged rows count as unaffected without FOUND_ROWS: extending a permanent lease to permanent.
    expect(await store.extend(key, 'a', null)).toBe(true)
    expect(await store.extend(key, 'b', null)).toBe(false)
    expect(await store.release(key, 'b')).toBe(false)
    expect(await store.release(key, 'a')).toBe(true)
    expect(await store.release(key, 'a')).toBe(false)
    expect(await store.acquire(key, 'b', 1_000)).toMatchObject({ acquired: true })
  })

  test('hostile, binary and look-alike keys and owners are each their own lock, stored byte for byte', async () => {
    const store = mysqlStore({ connection: pool, tableName })
    const base = newKey()
    const suffixes = [
      "'; DROP TABLE verrou_locks; --",
      '"; DELETE FROM verrou_locks; #',
      '\\',
      '\\0',
      '\u0000',
      '%',
      '_',
      '`',
      'Foo',
      'foo',
      'FOO',
      'foo ',
      'ß',
      'ss',
      'é',
      'e\u0301',
      'e',
      '\uD800',
      '\uDFFF',
      '\uFFFD',
      '🔒',
      'x'.repeat(100_000),
    ]
    const keys = suffixes.map((suffix) => `${base}:${suffix}`)
    const owners = keys.map((_, i) => `owner '${i}'; --\u0000`)
    const results = await Promise.all(keys.map((key, i) => store.acquire(key, owners[i]!, 10_000)))
    expect(results.every((result) => result.acquired)).toBe(true)
    for (const key of keys) expect(await store.isLocked(key)).toBe(true)
    // Owners are exact too: a case or byte variant is somebody else.
    expect(await store.release(keys[0]!, owners[0]!.toUpperCase())).toBe(false)
    expect(await store.release(keys[0]!, owners[0]!.replace('\u0000', ''))).toBe(false)
    for (const [i, key] of keys.entries()) expect(await store.release(key, owners[i]!)).toBe(true)

    const [rows] = await pool.query<RowDataPacket[]>(`SELECT lock_key FROM \`${tableName}\` WHERE key_hash IN (?)`, [
      keys.map((key) => keyHash(toBytes(key))),
    ])
    expect(rows.map((row) => (row.lock_key as Buffer).toString('hex')).sort()).toEqual(
      keys.map((key) => toBytes(key).toString('hex')).sort(),
    )
  })

  test('a fencing token that would reach the reserved range is a storage error, never a wrong answer', async () => {
    const store = mysqlStore({ connection: pool, tableName })
    const key = newKey()
    await store.acquire(key, 'a', 10_000)
    await store.release(key, 'a')
    await pool.execute(`UPDATE \`${tableName}\` SET fencing_token = ? WHERE key_hash = ?`, [
      REFUSED_BASE - 1,
      keyHash(toBytes(key)),
    ])
    await expect(store.acquire(key, 'b', 10_000)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
    expect(await store.isLocked(key)).toBe(false)
  })

  test('works through a Lock restored in another "process" on another connection', async () => {
    const first = new LockFactory(mysqlStore({ connection: pool, tableName }))
    const second = new LockFactory(mysqlStore({ connection: await connection(), tableName }))
    const lock = first.createLock(newKey(), '10s')
    expect(await lock.acquireImmediately()).toBe(true)
    const restored = second.restoreLock(lock.serialize())
    expect(restored.fencingToken).toBe(lock.fencingToken)
    await restored.extend()
    await restored.release()
    expect(await lock.isLocked()).toBe(false)
  })

  test('options are validated before anything reaches the server', () => {
    // @ts-expect-error: the connection is required
    expect(() => mysqlStore({})).toThrow(errors.E_INVALID_ARGUMENT)
    const callbackPool = createTestPool().pool
    try {
      // @ts-expect-error: the callback API is not accepted
      expect(() => mysqlStore({ connection: callbackPool })).toThrow(/connection\.promise\(\)/)
      expect(() => mysqlStore({ connection: callbackPool.promise() })).not.toThrow()
    } finally {
      callbackPool.end()
    }
    expect(() => mysqlStore({ connection: pool, pruneInterval: -1 })).toThrow(errors.E_INVALID_ARGUMENT)
    expect(() => mysqlStore({ connection: pool, pruneInterval: Number.NaN })).toThrow(errors.E_INVALID_ARGUMENT)
  })
})
