export { type EvictionPolicyAction, type MemoryPolicy, mayEvict, parseMemoryInfo } from './eviction.js'
export { DEFAULT_PREFIX, invalidOwnerReason, invalidPrefixReason, type LockKeys, lockKeys } from './keys.js'
export {
  DEFAULT_FENCING_COUNTER_GRACE,
  LOCK_SCRIPTS,
  type LockScript,
  MIN_FENCING_COUNTER_GRACE,
  ScriptedLockStore,
  type ScriptedStoreOptions,
} from './scripted_store.js'
export { RELEASE_SCRIPT } from './scripts.js'
