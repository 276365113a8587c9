export { MysqlStore, type MysqlStoreOptions, mysqlStore } from './store.js'
