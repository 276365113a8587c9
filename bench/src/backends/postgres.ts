import { postgresStore } from '@verrou/postgres'
import { postgresConfig } from '@verrou/test-utils/connection-settings'
import knex from 'knex'
import { knexStore } from 'verrou-v0/drivers/knex'
import type { ConnectOptions, Counters, Subject } from '../subject.js'
import { postgresFloorSubject, postgresFloorTableSql } from '../subjects/floor_postgres.js'
import { verrouSubjects } from '../subjects/verrou.js'
import { verrouV0Subject } from '../subjects/verrou_v0.js'
import type { Backend } from './backend.js'
import { PgPool } from './pg.js'

/** A pool (of one connection unless asked for more) whose every query is counted as a round trip. */
function countedPool(counters: Counters, { poolSize = 1 }: ConnectOptions = {}): PgPool {
  const pool = new PgPool({ ...postgresConfig(), max: poolSize, connectionTimeoutMillis: 5000 })
  pool.on('error', () => {})
  const query = pool.query
  Object.assign(pool, {
    query(this: PgPool, ...args: unknown[]) {
      counters.roundTrips += 1
      return Reflect.apply(query, this, args)
    },
  })
  return pool
}

const tablesOf = (runId: string) => ({ ours: `vbench_${runId}_ours`, floor: `vbench_${runId}_raw`, v0: `vbench_${runId}_v0` })

function postgresSubjects(tables: ReturnType<typeof tablesOf>): Subject[] {
  return [
    ...verrouSubjects('postgres', async (counters, options) => {
      const pool = countedPool(counters, options)
      return { store: postgresStore({ connection: pool, tableName: tables.ours }), close: () => pool.end() }
    }),
    postgresFloorSubject(countedPool, tables.floor),
    verrouV0Subject(
      'postgres',
      async (counters, options) => {
        const db = knex({ client: 'pg', connection: postgresConfig(), pool: { min: 0, max: options?.poolSize ?? 1 } })
        db.on('query', () => {
          counters.roundTrips += 1
        })
        return { store: knexStore({ connection: db, tableName: tables.v0 }).factory(), close: () => db.destroy() }
      },
      ' (knex)',
    ),
  ]
}

export const postgresBackend: Backend = {
  store: 'postgres',
  label: 'PostgreSQL',
  async start({ runId }) {
    const admin = new PgPool({ ...postgresConfig(), max: 1, connectionTimeoutMillis: 5000 })
    admin.on('error', () => {})
    const version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version
    const tables = tablesOf(runId)
    await admin.query(postgresFloorTableSql(tables.floor))
    return {
      server: `PostgreSQL ${version ?? 'unknown version'}`,
      subjects: postgresSubjects(tables),
      shared: {},
      async stop() {
        await admin.query(
          `DROP TABLE IF EXISTS ${tables.ours}, ${tables.floor}, ${tables.v0}; DROP SEQUENCE IF EXISTS ${tables.ours}_fencing_seq, ${tables.ours}_prune_seq`,
        )
        await admin.end()
      },
    }
  },
  attach: ({ runId }) => postgresSubjects(tablesOf(runId)),
}
