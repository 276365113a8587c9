export { type EvictionPolicyAction, type MemoryPolicy, mayEvict, parseMemoryInfo } from './eviction.js'
export type { InboxMessage } from './inbox_message.js'
export {
  DEFAULT_PREFIX,
  invalidOwnerReason,
  invalidPrefixReason,
  type LockKeys,
  lockKeys,
  type SharedLockKeys,
  sharedLockKeys,
} from './keys.js'
export { HEIR_INBOX_PREFIX } from './lua_helpers.js'
export { type AcquireReply, parseAcquireReply } from './replies.js'
export { ScriptedSharedLockStore, type SharedLockScript, type SharedSubscribe } from './scripted_shared_store.js'
export {
  DEFAULT_FENCING_COUNTER_GRACE,
  LOCK_SCRIPTS,
  type LockScript,
  MIN_FENCING_COUNTER_GRACE,
  ScriptedLockStore,
  type ScriptedStoreOptions,
} from './scripted_store.js'
export { ACQUIRE_SCRIPT, LEAVE_QUEUE_SCRIPT, RELEASE_SCRIPT } from './scripts.js'
export { READER_LINGER_MS } from './shared_lua.js'
export {
  SHARED_ACQUIRE_SCRIPT,
  SHARED_EXTEND_SCRIPT,
  SHARED_FORCE_RELEASE_SCRIPT,
  SHARED_IS_LOCKED_SCRIPT,
  SHARED_LEAVE_QUEUE_SCRIPT,
  SHARED_RELEASE_SCRIPT,
} from './shared_scripts.js'
