import { randomBytes } from 'node:crypto'
import { errors } from '@verrou/core'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createClient, createPool, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

const tableName = uniqueTableName('verrou_shared_failures')
let admin: pg.Client

const WRITE = { exclusive: true, limit: null }
const PERMIT = { exclusive: false, limit: 1 }

beforeAll(async () => {
  admin = await createClient()
})

afterAll(async () => {
  await dropTable(admin, tableName)
  await admin.end()
})

/** Waits until a session of `applicationName` is blocked on a lock, and returns its pid. */
async function blockedBackend(applicationName: string): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const { rows } = await admin.query(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
      [applicationName],
    )
    if (rows[0]) return rows[0].pid as number
    await sleep(10)
  }
  throw new Error(`no session of ${applicationName} ever blocked`)
}

describe('shared locks: a backend killed in the middle of an operation', () => {
  test('is a storage error, never an answer, and leaves the key as it was', async () => {
    const applicationName = `verrou-shared-kill-${randomBytes(4).toString('hex')}`
    const pool = createPool({ application_name: applicationName })
    const store = new PostgresStore({ connection: pool, tableName, listen: false })
    try {
      const key = uniqueKey()
      expect((await store.shared!.acquire(key, 'holder', WRITE, 60_000)).acquired).toBe(true)
      expect(await store.shared!.acquire(key, 'waiter', PERMIT, 60_000, { lease: 60_000 })).toMatchObject({
        position: 0,
      })
      // Another transaction holds the key's row lock, so each call below waits inside the function.
      const blocker = await createClient()
      await blocker.query('BEGIN')
      await blocker.query(`SELECT 1 FROM "${tableName}_shared" WHERE key_hash = sha256($1::bytea) FOR UPDATE`, [Buffer.from(key)])
      try {
        for (const call of [
          () => store.shared!.release(key, 'holder', WRITE),
          () => store.shared!.leaveQueue(key, 'waiter'),
          () => store.shared!.acquire(key, 'other', WRITE, 60_000, { lease: 60_000 }),
        ]) {
          const pending = call()
          pending.catch(() => {})
          await admin.query('SELECT pg_terminate_backend($1)', [await blockedBackend(applicationName)])
          await expect(pending).rejects.toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
        }
      } finally {
        await blocker.query('ROLLBACK')
        await blocker.end()
      }
      // Nothing of the killed calls remains: the holder holds, the waiter is first, nobody else queued.
      expect(await store.shared!.isLocked(key, WRITE)).toBe(true)
      expect(await store.shared!.acquire(key, 'waiter', PERMIT, 60_000, { lease: 60_000 })).toMatchObject({
        position: 0,
      })
      expect(await store.shared!.release(key, 'holder', WRITE)).toBe(true)
      expect((await store.shared!.acquire(key, 'waiter', PERMIT, 60_000, { lease: 60_000 })).acquired).toBe(true)
    } finally {
      await pool.end()
    }
  })
})
