// Run as a child process by a test: subscribes to releases, never calls close(), and must still exit.
import pg from 'pg'
import { PostgresStore } from '../src/store.js'
import { connectionConfig, uniqueTableName } from './postgres.js'

// allowExitOnIdle: the pool's idle sessions do not hold the process, so only the store's could.
const pool = new pg.Pool({ ...connectionConfig(), allowExitOnIdle: true })
const tableName = uniqueTableName('verrou_forgotten')
const store = new PostgresStore({ connection: pool, tableName })
await store.subscribeToReleases!('key', () => undefined)
await pool.query(
  `DROP TABLE IF EXISTS "${tableName}"; DROP SEQUENCE IF EXISTS "${tableName}_fencing_seq", "${tableName}_prune_seq"`,
)
process.stdout.write('subscribed\n')
