import type { StoreSpec } from '../backends/stores.js'
import type { SectionRecord } from './protocol.js'

/** From the dying-waiters test to a victim process. */
export type VictimOrder =
  | { type: 'setup'; spec: StoreSpec; key: string; owner: string; ttl: number; placeLease: number; counterFile: string }
  /** Start waiting (the first time), or make the next attempt. */
  | { type: 'next' }

export type VictimMessage =
  | { type: 'ready' }
  /** After a refused attempt: its 0-based place among the live waiters (-1: the store did not say). */
  | { type: 'position'; position: number }
  /** It got the lock, ran its section and released. */
  | { type: 'section'; record: SectionRecord }
  | { type: 'failed'; error: string }
