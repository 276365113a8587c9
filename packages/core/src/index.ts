export type { AcquireOptions } from './acquire.js'
export type { Duration } from './duration.js'
export * as errors from './errors.js'
export { HeardHandOvers } from './heard_hand_overs.js'
export type { KeepAlive, KeepAliveOptions } from './keep_alive.js'
export { Lock } from './lock.js'
export {
  type CreateLockOptions,
  type CreateSemaphoreOptions,
  LockFactory,
  type LockFactoryOptions,
  type ReadWriteLock,
} from './lock_factory.js'
export type { Logger } from './logger.js'
export { MemoryStore, type MemoryStoreOptions, memoryStore } from './memory_store.js'
export { claimDelay, PendingClaims } from './pending_claims.js'
export type { RetryOptions } from './retry_policy.js'
export type { LockContext, RunOptions, RunResult } from './run.js'
export type { LockKind } from './shared_mode_store.js'
export type { AcquireResult, HandOver, LockStore, SharedLockStore, SharedMode, Unsubscribe, WaitOptions } from './store.js'
export { UnheardAnnouncements } from './unheard_announcements.js'
export { type StoreEntry, Verrou, type VerrouConfig } from './verrou.js'
