import { mysqlStore } from '@verrou/mysql'
import { mysqlConfig } from '@verrou/test-utils/connection-settings'
import knex from 'knex'
import mysql, { type Pool, type PoolOptions } from 'mysql2/promise'
import { knexStore } from 'verrou-v0/drivers/knex'
import type { ConnectOptions, Counters, Subject } from '../subject.js'
import { mysqlFloorSubject, mysqlFloorTableSql } from '../subjects/floor_mysql.js'
import { verrouSubjects } from '../subjects/verrou.js'
import { verrouV0Subject } from '../subjects/verrou_v0.js'
import type { Backend } from './backend.js'

/**
 * A pool (of one connection unless asked for more) whose every statement is counted as a round trip. Counted
 * on the callback pool inside the promise wrapper, which every statement reaches: our store sends through it
 * directly (see the MySQL store's StatementSender), the floor through the wrapper.
 */
function countedPool(counters: Counters, { poolSize = 1 }: ConnectOptions = {}, options: PoolOptions = {}): Pool {
  const pool = mysql.createPool({ ...mysqlConfig, connectionLimit: poolSize, ...options })
  const core = pool.pool
  for (const method of ['execute', 'query'] as const) {
    const original = core[method]
    Object.assign(core, {
      [method](this: typeof core, ...args: unknown[]) {
        counters.roundTrips += 1
        return Reflect.apply(original, this, args)
      },
    })
  }
  return pool
}

const tablesOf = (runId: string) => ({ ours: `vbench_${runId}_ours`, floor: `vbench_${runId}_raw`, v0: `vbench_${runId}_v0` })

function mysqlSubjects(tables: ReturnType<typeof tablesOf>): Subject[] {
  return [
    ...verrouSubjects('mysql', async (counters, options) => {
      const pool = countedPool(counters, options)
      return { store: mysqlStore({ connection: pool, tableName: tables.ours }), close: () => pool.end() }
    }),
    // Without FOUND_ROWS, an upsert that changes nothing reports 0 rows: the floor reads that as "held".
    mysqlFloorSubject((counters, options) => countedPool(counters, options, { flags: ['-FOUND_ROWS'] }), tables.floor),
    verrouV0Subject(
      'mysql',
      async (counters, options) => {
        const db = knex({ client: 'mysql2', connection: mysqlConfig, pool: { min: 0, max: options?.poolSize ?? 1 } })
        db.on('query', () => {
          counters.roundTrips += 1
        })
        return { store: knexStore({ connection: db, tableName: tables.v0 }).factory(), close: () => db.destroy() }
      },
      ' (knex)',
    ),
  ]
}

export const mysqlBackend: Backend = {
  store: 'mysql',
  label: 'MySQL / MariaDB',
  async start({ runId }) {
    const admin = mysql.createPool({ ...mysqlConfig, connectionLimit: 1, multipleStatements: true })
    const [rows] = await admin.query<mysql.RowDataPacket[]>('SELECT VERSION() AS version')
    const version = String(rows[0]?.version ?? 'unknown version')
    const tables = tablesOf(runId)
    await admin.query(mysqlFloorTableSql(tables.floor))
    return {
      server: `${version.toLowerCase().includes('mariadb') ? 'MariaDB' : 'MySQL'} ${version}`,
      subjects: mysqlSubjects(tables),
      shared: {},
      async stop() {
        await admin.query(`DROP TABLE IF EXISTS ${tables.ours}, ${tables.ours}_floor, ${tables.floor}, ${tables.v0}`)
        await admin.end()
      },
    }
  },
  attach: ({ runId }) => mysqlSubjects(tablesOf(runId)),
}
