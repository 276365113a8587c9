export { RedisStore, type RedisStoreOptions, redisStore } from './store.js'
