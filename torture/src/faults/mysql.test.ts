import { LockFactory } from '@verrou/core'
import { type MysqlStore, mysqlStore } from '@verrou/mysql'
import { mysqlConfig, uniqueName } from '@verrou/test-utils/connection-settings'
import mysql, { type Connection, type Pool, type RowDataPacket } from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { installCrashGuard } from './crash_guard.js'
import { OUTAGE_OPERATIONS, runIdleKill, runOutage } from './outage.js'

const OPERATION_TIMEOUT = 1_000
const SLACK = 1_500
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

describe('mysql (MariaDB): the store connections blocked and killed from the server side', () => {
  const guard = installCrashGuard()
  const tableName = uniqueName('torture_faults')
  let admin: Connection
  let blocker: Connection
  let pool: Pool
  let store: MysqlStore
  let factory: LockFactory
  /** Server thread ids of this store's connections: what KILL takes. */
  const threads = new Set<number>()

  beforeAll(async () => {
    admin = await mysql.createConnection(mysqlConfig)
    blocker = await mysql.createConnection(mysqlConfig)
    pool = mysql.createPool({ ...mysqlConfig, connectionLimit: 16 })
    pool.pool.on('connection', (connection) => {
      threads.add(connection.threadId)
    })
    store = mysqlStore({ connection: pool, tableName })
    factory = new LockFactory(store, { operationTimeout: OPERATION_TIMEOUT })
  })

  afterAll(async () => {
    await pool?.end()
    await blocker?.end()
    await admin?.query(`DROP TABLE IF EXISTS \`${tableName}\`, \`${tableName}_floor\`, \`${tableName}_shared\``)
    await admin?.end()
    guard.dispose()
    expect(guard.seen).toEqual([])
  })

  /** Another session write-locks the store's tables (the shared one too): every statement of the store waits behind it. */
  const lockTables = async () => {
    await blocker.query(`LOCK TABLES \`${tableName}\` WRITE, \`${tableName}_floor\` WRITE, \`${tableName}_shared\` WRITE`)
  }
  const unlockTables = async () => {
    await blocker.query('UNLOCK TABLES')
  }
  const killConnections = async (): Promise<number> => {
    let killed = 0
    for (const thread of threads) {
      try {
        await admin.query(`KILL CONNECTION ${Number(thread)}`)
        killed++
      } catch {
        // Already gone.
      }
      threads.delete(thread)
    }
    return killed
  }
  /** This store's statements now waiting on the blocker's table locks. */
  const waitingStatements = async (): Promise<number> => {
    if (threads.size === 0) return 0
    const [rows] = await admin.query<RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table%' AND ID IN (?)",
      [[...threads]],
    )
    return Number(rows[0]!.n)
  }

  test('the server stops answering (tables locked elsewhere): storage errors within the timeout, then the same store works', async () => {
    await runOutage(
      factory,
      { name: 'mysql not answering', inflict: lockTables, heal: unlockTables },
      { store: 'mysql', failWithin: OPERATION_TIMEOUT + SLACK, recoverWithin: 5_000 },
    )
  })

  test('connections killed (KILL) in the middle of every operation: prompt storage errors, then the same store works', async () => {
    const patient = new LockFactory(store, { operationTimeout: 10_000 })
    await runOutage(
      patient,
      {
        name: 'mysql connections killed mid-operation',
        inflict: lockTables,
        strike: async () => {
          for (let tries = 0; (await waitingStatements()) < OUTAGE_OPERATIONS && tries < 250; tries++) await sleep(20)
          expect(await waitingStatements(), 'operations waiting inside the server').toBe(OUTAGE_OPERATIONS)
          expect(await killConnections()).toBeGreaterThanOrEqual(OUTAGE_OPERATIONS)
        },
        heal: unlockTables,
      },
      { store: 'mysql', failWithin: 10_000, failAfterStrikeWithin: 2_000, recoverWithin: 5_000 },
    )
  })

  test('connections killed while idle: right answers or storage errors, and the store recovers by itself', async () => {
    await runIdleKill(factory, killConnections, { store: 'mysql', recoverWithin: 5_000 })
  })

  test('no unhandled rejection and no uncaught exception so far', () => {
    expect(guard.seen).toEqual([])
  })
})
