import { LockFactory } from '@verrou/core'
import { type PostgresStore, postgresStore } from '@verrou/postgres'
import { postgresConfig, uniqueName } from '@verrou/test-utils/connection-settings'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { installCrashGuard } from './crash_guard.js'
import { OUTAGE_OPERATIONS, runIdleKill, runOutage } from './outage.js'

const OPERATION_TIMEOUT = 1_000
const SLACK = 1_500
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

describe('postgres: the store sessions blocked and killed from the server side', () => {
  const guard = installCrashGuard()
  const tableName = uniqueName('torture_faults')
  /** Lets the test find exactly this store's sessions in pg_stat_activity. */
  const applicationName = uniqueName('verrou_torture')
  let admin: pg.Client
  let blocker: pg.Client
  let pool: pg.Pool
  let store: PostgresStore
  let factory: LockFactory

  beforeAll(async () => {
    admin = new pg.Client(postgresConfig())
    await admin.connect()
    blocker = new pg.Client(postgresConfig())
    await blocker.connect()
    pool = new pg.Pool({ ...postgresConfig(), application_name: applicationName, max: 16, connectionTimeoutMillis: 5000 })
    // A pooled session killed while idle is reported here; the pool drops it and opens another.
    pool.on('error', () => {})
    store = postgresStore({ connection: pool, tableName })
    factory = new LockFactory(store, { operationTimeout: OPERATION_TIMEOUT })
  })

  afterAll(async () => {
    await store?.close()
    await pool?.end()
    await blocker?.end()
    await admin?.query(`DROP TABLE IF EXISTS "${tableName}", "${tableName}_shared"; DROP SEQUENCE IF EXISTS "${tableName}_fencing_seq", "${tableName}_prune_seq";
      DROP FUNCTION IF EXISTS "${tableName}_shared_v1"`)
    await admin?.end()
    guard.dispose()
    expect(guard.seen).toEqual([])
  })

  /** Another session takes the table exclusively: every statement of the store waits behind it. */
  const lockTable = async () => {
    await blocker.query('BEGIN')
    // The mutex table and the shared-lock table (which the outage's permits and read/write locks created).
    await blocker.query(`LOCK TABLE "${tableName}", "${tableName}_shared" IN ACCESS EXCLUSIVE MODE`)
  }
  const unlockTable = async () => {
    await blocker.query('ROLLBACK')
  }
  const terminateSessions = async (): Promise<number> => {
    const { rows } = await admin.query(
      'SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
      [applicationName],
    )
    return rows.filter((row: { killed: boolean }) => row.killed).length
  }
  const blockedSessions = async (): Promise<number> => {
    const { rows } = await admin.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
      [applicationName],
    )
    return rows[0].n as number
  }

  test('the server stops answering (a table lock held elsewhere): storage errors within the timeout, then the same store works', async () => {
    await runOutage(
      factory,
      { name: 'postgres not answering', inflict: lockTable, heal: unlockTable },
      { store: 'postgres', failWithin: OPERATION_TIMEOUT + SLACK, recoverWithin: 5_000 },
    )
  })

  test('sessions terminated (pg_terminate_backend) in the middle of every operation: prompt storage errors, then the same store works', async () => {
    const patient = new LockFactory(store, { operationTimeout: 10_000 })
    await runOutage(
      patient,
      {
        name: 'postgres sessions terminated mid-operation',
        inflict: lockTable,
        strike: async () => {
          // Every operation sent is now waiting inside the server; kill the sessions under them.
          for (let tries = 0; (await blockedSessions()) < OUTAGE_OPERATIONS && tries < 250; tries++) await sleep(20)
          expect(await blockedSessions(), 'operations waiting inside the server').toBe(OUTAGE_OPERATIONS)
          expect(await terminateSessions()).toBeGreaterThanOrEqual(7)
        },
        heal: unlockTable,
      },
      { store: 'postgres', failWithin: 10_000, failAfterStrikeWithin: 2_000, recoverWithin: 5_000 },
    )
  })

  test('sessions terminated while idle: right answers or storage errors, and the store recovers by itself', async () => {
    await runIdleKill(factory, terminateSessions, { store: 'postgres', recoverWithin: 5_000 })
  })

  test('no unhandled rejection and no uncaught exception so far', () => {
    expect(guard.seen).toEqual([])
  })
})
