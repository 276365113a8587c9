export { DEFAULT_PREFIX, invalidOwnerReason, invalidPrefixReason, type LockKeys, lockKeys } from './keys.js'
export { LOCK_SCRIPTS, type LockScript, ScriptedLockStore } from './scripted_store.js'
export { RELEASE_SCRIPT } from './scripts.js'
