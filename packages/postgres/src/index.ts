export type { PostgresConnection } from './connection.js'
export { PostgresStore, type PostgresStoreOptions, postgresStore } from './store.js'
