export { type UpstashConnection, UpstashStore, type UpstashStoreOptions, upstashStore } from './store.js'
