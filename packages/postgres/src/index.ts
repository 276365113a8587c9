export type { PostgresConnection } from './connection.js'
export { sharedLocksSql } from './shared_sql.js'
export { PostgresStore, type PostgresStoreOptions, postgresStore } from './store.js'
