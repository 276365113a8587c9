export { type EvictionPolicyAction, type MemoryPolicy, mayEvict, parseMemoryInfo } from './eviction.js'
export { DEFAULT_PREFIX, invalidOwnerReason, invalidPrefixReason, type LockKeys, lockKeys } from './keys.js'
export { type AcquireReply, parseAcquireReply } from './replies.js'
export {
  DEFAULT_FENCING_COUNTER_GRACE,
  LOCK_SCRIPTS,
  type LockScript,
  MIN_FENCING_COUNTER_GRACE,
  ScriptedLockStore,
  type ScriptedStoreOptions,
} from './scripted_store.js'
export { ACQUIRE_SCRIPT, LEAVE_QUEUE_SCRIPT, RELEASE_SCRIPT } from './scripts.js'
