import { randomUUID } from 'node:crypto'
import { errors } from '@verrou/core'
import type { Connection, Pool, RowDataPacket } from 'mysql2/promise'
import { afterAll, describe, expect, test } from 'vitest'
import { createTestConnection, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { mysqlStore } from './index.js'
import { keyHash, toBytes } from './key_bytes.js'

/**
 * Users run MySQL/MariaDB with another transaction isolation than the default (a server or session
 * setting). Each lock statement runs in autocommit at the session's level; the tests set it per session,
 * as such a server would for every connection, and race 20 sessions on one key.
 */
const LEVELS = ['READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'] as const
const RACERS = 20
/** Handovers the churn test waits for. */
const GRANTS = 50

const tableName = uniqueTableName('isolation')
const admin = createTestPool({ connectionLimit: 1 })
const newKey = (label: string) => `${label}:${randomUUID()}`

afterAll(async () => {
  await dropTables(admin, tableName)
  await admin.end()
})

async function sessionAt(level: string): Promise<Connection> {
  const connection = await createTestConnection()
  await connection.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${level}`)
  return connection
}

/** A pool whose every connection runs at `level`, set as the pool opens it, before anyone uses it. */
function poolAt(level: string): Pool {
  const pool = createTestPool({ connectionLimit: RACERS })
  pool.on('connection', (connection) => {
    connection.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${level}`)
  })
  return pool
}

describe.each(LEVELS)('transaction isolation %s', (level) => {
  test('the level really is in force on the store sessions', async () => {
    const pool = poolAt(level)
    try {
      const [rows] = await pool.query<RowDataPacket[]>('SELECT @@SESSION.tx_isolation AS level')
      expect(rows[0]!.level).toBe(level.replace(' ', '-'))
    } finally {
      await pool.end()
    }
  })

  test(`${RACERS} sessions racing on one key: one winner each time, the rest "not acquired", never an error`, async () => {
    const sessions = await Promise.all(Array.from({ length: RACERS }, () => sessionAt(level)))
    const stores = sessions.map((connection) => mysqlStore({ connection, tableName, pruneInterval: false }))
    try {
      for (let round = 0; round < 10; round++) {
        const key = newKey(`race-${round}`)
        for (const phase of ['new', 'released', 'force released'] as const) {
          const results = await Promise.all(stores.map((store, i) => store.acquire(key, `owner-${i}`, 60_000)))
          const winners = results.flatMap((result, i) => (result.acquired ? [i] : []))
          expect(winners, `${phase} key, round ${round}`).toHaveLength(1)
          for (const result of results) {
            if (!result.acquired && result.expiresIn !== undefined) expect(result.expiresIn).toBeGreaterThan(50_000)
          }
          const winner = winners[0]!
          const [extended, ...others] = await Promise.all([
            stores[winner]!.extend(key, `owner-${winner}`, 60_000),
            ...stores.map((store, i) => (i === winner ? store.isLocked(key) : store.extend(key, `owner-${i}`, 60_000))),
          ])
          expect(extended).toBe(true)
          expect(others.filter((answer) => answer === true)).toEqual([true]) // only the holder's isLocked
          if (phase === 'force released') {
            await Promise.all(stores.map((store) => store.forceRelease(key)))
            expect(await stores[0]!.isLocked(key)).toBe(false)
          } else {
            const released = await Promise.all(stores.map((store, i) => store.release(key, `owner-${i}`)))
            expect(released.filter(Boolean)).toHaveLength(1)
            expect(released[winner]).toBe(true)
          }
        }
      }
    } finally {
      await Promise.all(sessions.map((session) => session.end()))
    }
  })

  test('churn with pruning: acquire, extend and release by many sessions at once keep exclusion and never fail', async () => {
    const pool = poolAt(level)
    const store = mysqlStore({ connection: pool, tableName, pruneInterval: 0 })
    const keys = [newKey('churn'), newKey('churn')]
    const holders = new Map(keys.map((key) => [key, 0]))
    let overlaps = 0
    let grants = 0
    const worker = async (id: number) => {
      const owner = `churner-${id}`
      const key = keys[id % 2]!
      for (let attempt = 0; attempt < 2000 && grants < GRANTS; attempt++) {
        const result = await store.acquire(key, owner, 10_000)
        if (!result.acquired) continue
        holders.set(key, holders.get(key)! + 1)
        if (holders.get(key)! > 1) overlaps++
        grants++
        expect(await store.extend(key, owner, 10_000)).toBe(true)
        holders.set(key, holders.get(key)! - 1)
        expect(await store.release(key, owner)).toBe(true)
      }
    }
    try {
      await Promise.all(Array.from({ length: RACERS }, (_, id) => worker(id)))
    } finally {
      await pool.end()
    }
    expect(overlaps).toBe(0)
    expect(grants).toBeGreaterThanOrEqual(GRANTS)
  })
})

test('a lock wait timeout (1205) is a storage error, never "not acquired": the row was held by someone else for that long', async () => {
  const pool = createTestPool({ connectionLimit: 2 })
  pool.on('connection', (connection) => {
    connection.query('SET SESSION innodb_lock_wait_timeout = 1')
  })
  const store = mysqlStore({ connection: pool, tableName, pruneInterval: false })
  const key = newKey('waited')
  const blocker = await createTestConnection()
  try {
    expect((await store.acquire(key, 'a', 60_000)).acquired).toBe(true)
    await blocker.query('BEGIN')
    await blocker.query(`SELECT 1 FROM \`${tableName}\` WHERE key_hash = ? FOR UPDATE`, [keyHash(toBytes(key))])
    const failure = await store.acquire(key, 'b', 60_000).catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    expect(((failure as Error).cause as { errno?: number }).errno).toBe(1205)
    await blocker.query('ROLLBACK')
    expect(await store.isLocked(key)).toBe(true)
  } finally {
    await blocker.end()
    await pool.end()
  }
})
