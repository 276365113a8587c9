import { randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { errors, LockFactory } from '@verrou/core'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createClient, createPool, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

const tableName = uniqueTableName('verrou_failures')
let admin: pg.Client

beforeAll(async () => {
  admin = await createClient()
})

afterAll(async () => {
  await dropTable(admin, tableName)
  await admin.end()
})

/** Times `operation`, which must fail with a storage error carrying the backend's error as its cause. */
async function expectStorageError(operation: Promise<unknown>): Promise<number> {
  const started = performance.now()
  const error = await operation.then(
    () => undefined,
    (reason: unknown) => reason,
  )
  expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
  expect((error as Error).cause).toBeInstanceOf(Error)
  return performance.now() - started
}

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

/** Holds the row lock of `key` in an open transaction, so any statement on that key waits behind it. */
async function holdRowLock(key: string): Promise<pg.Client> {
  const blocker = await createClient()
  await blocker.query('BEGIN')
  await blocker.query(`SELECT 1 FROM "${tableName}" WHERE key_hash = sha256($1::bytea) FOR UPDATE`, [Buffer.from(key)])
  return blocker
}

describe('a backend killed in the middle of an operation', () => {
  test('pool: the operation fails with a storage error at once, and the store recovers on a new session', async () => {
    const applicationName = `verrou-kill-${randomBytes(4).toString('hex')}`
    const pool = createPool({ application_name: applicationName })
    const store = new PostgresStore({ connection: pool, tableName, listen: false })
    try {
      const key = uniqueKey()
      await store.acquire(key, 'a', 60_000)
      await store.release(key, 'a')
      const blocker = await holdRowLock(key)
      try {
        const pending = store.acquire(key, 'b', 60_000)
        // Handled from the start: it may reject while the kill below is still being awaited.
        pending.catch(() => {})
        const pid = await blockedBackend(applicationName)
        await admin.query('SELECT pg_terminate_backend($1)', [pid])
        expect(await expectStorageError(pending)).toBeLessThan(2000)
      } finally {
        await blocker.query('ROLLBACK')
        await blocker.end()
      }
      expect((await store.acquire(key, 'b', 60_000)).acquired).toBe(true)
    } finally {
      await pool.end()
    }
  })

  test('single client: the pending operation and every later one fail fast with storage errors', async () => {
    const applicationName = `verrou-kill-${randomBytes(4).toString('hex')}`
    const client = await createClient({ application_name: applicationName })
    const store = new PostgresStore({ connection: client, tableName, listen: false })
    const key = uniqueKey()
    await store.acquire(key, 'a', 60_000)
    await store.release(key, 'a')
    const blocker = await holdRowLock(key)
    try {
      const pending = store.acquire(key, 'b', 60_000)
      const queued = store.release(key, 'b')
      // Handled from the start: they may reject while the kill below is still being awaited.
      pending.catch(() => {})
      queued.catch(() => {})
      const pid = await blockedBackend(applicationName)
      await admin.query('SELECT pg_terminate_backend($1)', [pid])
      expect(await expectStorageError(pending)).toBeLessThan(2000)
      expect(await expectStorageError(queued)).toBeLessThan(2000)
      expect(await expectStorageError(store.isLocked(key))).toBeLessThan(2000)
    } finally {
      await blocker.query('ROLLBACK')
      await blocker.end()
      await client.end().catch(() => undefined)
    }
  })
})

describe('an unreachable server', () => {
  let silent: Server
  let silentPort = 0
  const sockets = new Set<Socket>()

  beforeAll(async () => {
    // Accepts connections and never answers: the worst case, a server that hangs rather than refuses.
    silent = createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    silentPort = (silent.address() as { port: number }).port
  })

  afterAll(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => silent.close(resolve))
  })

  test('a refused connection is a storage error for every operation, within a bounded time', async () => {
    const pool = createPool({ host: '127.0.0.1', port: 1, connectionString: undefined })
    const store = new PostgresStore({ connection: pool, tableName, listen: false })
    try {
      for (const operation of [
        store.acquire('k', 'o', 1000),
        store.release('k', 'o'),
        store.extend('k', 'o', 1000),
        store.forceRelease('k'),
        store.isLocked('k'),
        store.pruneExpired(),
      ]) {
        expect(await expectStorageError(operation)).toBeLessThan(2000)
      }
    } finally {
      await pool.end()
    }
  })

  test('a server that never answers: the pool connect timeout turns into a storage error', async () => {
    const pool = createPool({ host: '127.0.0.1', port: silentPort, connectionString: undefined, connectionTimeoutMillis: 300 })
    const store = new PostgresStore({ connection: pool, tableName, listen: false })
    try {
      expect(await expectStorageError(store.acquire('k', 'o', 1000))).toBeLessThan(2000)
    } finally {
      await pool.end()
    }
  })

  test('a server that never answers and no pg timeout: the lock operation timeout still bounds acquire', async () => {
    const pool = createPool({ host: '127.0.0.1', port: silentPort, connectionString: undefined, connectionTimeoutMillis: 0 })
    const store = new PostgresStore({ connection: pool, tableName })
    const locks = new LockFactory(store, { operationTimeout: 300 })
    try {
      const started = performance.now()
      await expect(locks.createLock(uniqueKey()).acquire({ retry: { timeout: 5000 } })).rejects.toBeInstanceOf(
        errors.E_LOCK_STORAGE_ERROR,
      )
      expect(performance.now() - started).toBeLessThan(2000)
    } finally {
      await store.close()
      for (const socket of sockets) socket.destroy()
      await pool.end()
    }
  })
})
