import { randomUUID } from 'node:crypto'
import { errors, type LockStore } from '@verrou/core'
import type { Connection, RowDataPacket } from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { closedPort, createTestConnection, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { mysqlStore } from './index.js'

const pool = createTestPool()
const tableName = uniqueTableName('outage')
let admin: Connection
const newKey = () => `verrou:mysql:${randomUUID()}`

beforeAll(async () => {
  admin = await createTestConnection()
  // Create the tables up front so every test below starts with them in place.
  await mysqlStore({ connection: pool, tableName }).isLocked('warm-up')
})

afterAll(async () => {
  await dropTables(admin, tableName)
  await admin.end()
  await pool.end()
})

/**
 * Starts `operation`, holds it inside the server (a row lock it must wait for), kills the connection
 * running it from another session, and returns how the operation ended.
 */
async function killMidOperation(operation: () => Promise<unknown>): Promise<{ error: unknown; elapsed: number }> {
  await admin.query('BEGIN')
  await admin.query(`SELECT fencing_token FROM \`${tableName}_floor\` WHERE id = 1 FOR UPDATE`)
  try {
    const started = performance.now()
    const outcome = operation().then(
      () => undefined,
      (error: unknown) => error,
    )
    const threadId = await waitForBlockedStatement()
    await admin.query('KILL CONNECTION ?', [threadId])
    const error = await outcome
    return { error, elapsed: performance.now() - started }
  } finally {
    await admin.query('ROLLBACK')
  }
}

async function waitForBlockedStatement(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const [rows] = await admin.query<RowDataPacket[]>(
      'SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND info LIKE ?',
      [`INSERT INTO \`${tableName}\`%`],
    )
    if (rows[0]) return Number(rows[0].id)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('the acquire never reached the server')
}

describe('a database that goes away', () => {
  test('a pooled connection killed mid-acquire is a storage error at once, and the pool carries on', async () => {
    const store = mysqlStore({ connection: pool, tableName })
    const key = newKey()
    // Past its one-off table setup, so the statement held up is the acquire itself.
    expect(await store.isLocked(key)).toBe(false)
    const { error, elapsed } = await killMidOperation(() => store.acquire(key, 'o', 10_000))
    expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    expect((error as errors.E_LOCK_STORAGE_ERROR).operation).toBe('acquire')
    expect((error as Error).cause).toBeInstanceOf(Error)
    expect(elapsed).toBeLessThan(5_000)
    // Nothing was taken, and the next call gets a fresh connection from the pool.
    expect(await store.isLocked(key)).toBe(false)
    expect(await store.acquire(key, 'o', 10_000)).toMatchObject({ acquired: true })
  })

  test('a single connection killed mid-acquire: that call and every later one are storage errors, none hangs', async () => {
    const db = await createTestConnection()
    // The connection dies under it; mysql2 reports that as an 'error' event too.
    db.on('error', () => {})
    const store = mysqlStore({ connection: db, tableName })
    try {
      const key = newKey()
      expect(await store.isLocked(key)).toBe(false)
      const { error } = await killMidOperation(() => store.acquire(key, 'o', 10_000))
      expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
      await expectEveryOperationFails(store)
    } finally {
      db.destroy()
    }
  })

  test('a server that is not listening: every operation is a storage error within a bounded time', async () => {
    const unreachable = createTestPool({ port: await closedPort(), connectTimeout: 2_000 })
    try {
      const started = performance.now()
      await expectEveryOperationFails(mysqlStore({ connection: unreachable, tableName }))
      expect(performance.now() - started).toBeLessThan(5_000)
    } finally {
      await unreachable.end()
    }
  })
})

async function expectEveryOperationFails(store: LockStore & { pruneExpired(): Promise<number> }): Promise<void> {
  const calls: Array<() => Promise<unknown>> = [
    () => store.acquire('k', 'o', 1_000),
    () => store.release('k', 'o'),
    () => store.extend('k', 'o', 1_000),
    () => store.isLocked('k'),
    () => store.forceRelease('k'),
    () => store.pruneExpired(),
  ]
  for (const call of calls) {
    await expect(call()).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
  }
}
