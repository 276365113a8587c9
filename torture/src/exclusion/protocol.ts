import type { StoreSpec } from '../backends/stores.js'

/** What every worker process is told to do. */
export interface WorkerTask {
  spec: StoreSpec
  key: string
  /** How many sections each worker runs (at most, with `runForMs`). */
  sections: number
  /** Start no new section once this long has passed since the go (or once the parent says stop). */
  runForMs?: number
  /** Lease of every acquisition, ms. */
  ttl: number
  /** Hold time of a normal section, ms: uniform in [min, max]. */
  hold: { min: number; max: number }
  /** Some holds deliberately outlive the lease (the expiry variant). */
  stall?: { probability: number; min: number; max: number }
  /** The shared counter file (variant without fencing). */
  counterFile?: string
  /** Go through the parent's fenced resource instead of the counter file (the expiry variant). */
  fenced: boolean
  /** Waiters poll with exponential backoff from 1 ms up to this (stores with release notifications wake sooner). */
  maxRetryDelay: number
  /** Absent: a mutex (`createLock`). Otherwise each section takes a permit, or a read or write lock. */
  shared?: SharedPrimitive
}

/** The shared primitives: a semaphore of `limit` permits, or a read-write lock whose sections write this often. */
export type SharedPrimitive = { kind: 'semaphore'; limit: number } | { kind: 'read-write'; writeProbability: number }

/** What a section held: a mutex, a permit, a read or a write lock. */
export type SectionMode = 'mutex' | 'permit' | 'read' | 'write'

/** One critical section as a worker saw it; times are epoch ms with sub-ms precision, comparable across processes. */
export interface SectionRecord {
  pid: number
  mode: SectionMode
  token: number
  /** When the successful acquire request was sent. */
  requestedAt: number
  /** When acquire resolved: the holder's interval starts here. */
  acquiredAt: number
  /** Just before release was sent: the interval ends here. */
  endedAt: number
  stalled: boolean
  release: 'released' | 'not-owned' | 'storage-error'
  /** Fenced variant: the read and the write the section made through the resource. */
  read?: { accepted: boolean; at: number }
  write?: { accepted: boolean; sentAt: number }
}

/** Tasks run one after another in the same processes; each starts when every worker reported ready for it. */
/** `stop`: start no new section of `task` (the test has seen what it ran for). */
export type ParentMessage =
  | { type: 'tasks'; tasks: WorkerTask[] }
  | { type: 'go'; task: number }
  | { type: 'stop'; task: number }
  | FenceReply

export type WorkerMessage =
  | { type: 'ready'; task: number }
  | { type: 'done'; results: SectionRecord[][] }
  | { type: 'failed'; error: string }
  | FenceRequest

/** The fenced resource lives in the parent: one event loop, so each request is checked and applied atomically. */
export interface FenceRequest {
  type: 'fence'
  task: number
  id: number
  op: 'read' | 'write'
  token: number
  value?: number
}

export interface FenceReply {
  type: 'fence-reply'
  id: number
  accepted: boolean
  value: number
}
