import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createClient, createPool, dropTable, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'
import { toStoredBytes } from './text_bytes.js'

/**
 * A refused acquire that wrote the row (joined or renewed its place) commits with synchronous_commit off,
 * on a pool only; grants, polls and everything on a Client keep the session's setting.
 */
const tableName = uniqueTableName('verrou_relaxed')
let admin: pg.Client

beforeAll(async () => {
  admin = await createClient()
})

afterAll(async () => {
  await dropTable(admin, tableName)
  await admin.end()
})

/**
 * Records the `relaxed` column of every reply to the acquire statements that may write a refusal (not
 * acquire_free, which writes only a grant and has no such column), sent through `connection`.
 */
function recordRelaxed(connection: pg.Pool | pg.Client): (string | null)[] {
  const seen: (string | null)[] = []
  const query = connection.query.bind(connection) as (config: unknown) => Promise<pg.QueryResult>
  Object.assign(connection, {
    query: async (config: { name?: string }) => {
      const result = await query(config)
      if (/^verrou_acquire(_waiting)?_[0-9a-f]{16}$/.test(config.name ?? ''))
        seen.push((result.rows[0] as { relaxed: string | null }).relaxed)
      return result
    },
  })
  return seen
}

/**
 * Runs every release sent through `pool` (of one session) inside a transaction of the test's own, and records
 * the `synchronous_commit` that transaction has after the release statement: what its commit would use.
 */
function recordReleaseCommits(pool: pg.Pool): string[] {
  const seen: string[] = []
  const query = pool.query.bind(pool) as (config: unknown) => Promise<pg.QueryResult>
  Object.assign(pool, {
    query: async (config: { name?: string }) => {
      if (!config.name?.startsWith('verrou_release_')) return query(config)
      await query('BEGIN')
      try {
        const result = await query(config)
        seen.push((await query('SHOW synchronous_commit')).rows[0].synchronous_commit)
        return result
      } finally {
        await query('COMMIT')
      }
    },
  })
  return seen
}

async function placesOf(key: string): Promise<string[]> {
  const { rows } = await admin.query(
    `SELECT convert_from(waiter, 'UTF8') AS waiter FROM "${tableName}", unnest(waiters) AS waiter WHERE key_hash = sha256($1::bytea)`,
    [toStoredBytes(key)],
  )
  return rows.map((row: { waiter: string }) => row.waiter)
}

describe('relaxed commits of refusals', () => {
  test('on a pool: only a refusal that wrote a place is relaxed, for its own transaction only', async () => {
    // One session, so that SHOW below runs where the statements ran.
    const pool = createPool({ max: 1 })
    const store = new PostgresStore({ connection: pool, tableName, listen: false, pruneInterval: false })
    try {
      const seen = recordRelaxed(pool)
      const key = uniqueKey()
      expect((await store.acquire(key, 'holder', 60_000)).acquired).toBe(true)
      expect(await store.acquire(key, 'poller', 60_000)).toMatchObject({ acquired: false })
      expect(await store.acquire(key, 'waiter', 60_000, { lease: 10_000 })).toMatchObject({ acquired: false, position: 0 })
      expect(await store.acquire(key, 'waiter', 60_000, { lease: 10_000 })).toMatchObject({ acquired: false, position: 0 })
      // Committed and visible to every other session at once, as any commit.
      expect(await placesOf(key)).toEqual(['waiter'])
      expect(await store.release(key, 'holder')).toBe(true)
      expect((await store.acquire(key, 'waiter', 60_000, { lease: 10_000 })).acquired).toBe(true)
      // Grant, poll (nothing written), join, renewal, grant.
      expect(seen).toEqual([null, null, 'off', 'off', null])
      const { rows } = await pool.query('SHOW synchronous_commit')
      expect(rows[0].synchronous_commit).toBe('on')
    } finally {
      await store.close()
      await pool.end()
    }
  })

  test('on a Client, which may be inside the caller transaction, nothing is relaxed', async () => {
    const client = await createClient()
    const store = new PostgresStore({ connection: client, tableName, listen: false, pruneInterval: false })
    try {
      const seen = recordRelaxed(client)
      const key = uniqueKey()
      const holder = new PostgresStore({ connection: admin, tableName, listen: false, pruneInterval: false })
      expect((await holder.acquire(key, 'holder', 60_000)).acquired).toBe(true)
      await client.query('BEGIN')
      expect(await store.acquire(key, 'waiter', 60_000, { lease: 10_000 })).toMatchObject({ acquired: false, position: 0 })
      const { rows } = await client.query("SELECT current_setting('synchronous_commit') AS setting")
      expect(rows[0].setting).toBe('on')
      await client.query('COMMIT')
      expect(seen).toEqual([null])
      await holder.close()
    } finally {
      await store.close()
      await client.end()
    }
  })
})

describe('relaxed commits of releases', () => {
  test('on a pool, the release of a lease that ends skips the WAL flush; of one that never ends, it waits for it', async () => {
    // One session, so that SHOW below runs where the statements ran.
    const pool = createPool({ max: 1 })
    const store = new PostgresStore({ connection: pool, tableName, listen: false, pruneInterval: false })
    try {
      const seen = recordReleaseCommits(pool)
      const finite = uniqueKey()
      const forever = uniqueKey()
      expect((await store.acquire(finite, 'holder', 60_000)).acquired).toBe(true)
      expect((await store.acquire(forever, 'holder', null)).acquired).toBe(true)
      // A stale owner releases nothing, and nothing is relaxed: the light statement, then the full one, refuse it.
      expect(await store.release(finite, 'stranger')).toBe(false)
      expect(await store.release(finite, 'holder')).toBe(true)
      expect(await store.release(forever, 'holder')).toBe(true)
      expect(seen).toEqual(['on', 'on', 'off', 'on'])
      // Relaxed for that transaction alone: the session keeps its setting.
      const { rows } = await pool.query('SHOW synchronous_commit')
      expect(rows[0].synchronous_commit).toBe('on')
      // Committed and visible to every other session at once, as any commit: the key is free.
      const other = new PostgresStore({ connection: admin, tableName, listen: false, pruneInterval: false })
      expect((await other.acquire(finite, 'next', 60_000)).acquired).toBe(true)
      expect(await other.release(finite, 'next')).toBe(true)
      await other.close()
    } finally {
      await store.close()
      await pool.end()
    }
  })

  test('on a Client, which may be inside the caller transaction, a release is never relaxed', async () => {
    const client = await createClient()
    const store = new PostgresStore({ connection: client, tableName, listen: false, pruneInterval: false })
    try {
      const key = uniqueKey()
      expect((await store.acquire(key, 'holder', 60_000)).acquired).toBe(true)
      await client.query('BEGIN')
      expect(await store.release(key, 'holder')).toBe(true)
      const { rows } = await client.query("SELECT current_setting('synchronous_commit') AS setting")
      expect(rows[0].setting).toBe('on')
      await client.query('COMMIT')
    } finally {
      await store.close()
      await client.end()
    }
  })
})
