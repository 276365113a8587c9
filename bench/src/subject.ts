/** The stores the bench knows, in the order the report lists them. */
export const STORE_IDS = ['memory', 'redis', 'upstash', 'postgres', 'mysql', 'dynamodb'] as const
export type StoreId = (typeof STORE_IDS)[number]

/** Ends what `LockClient.lock` took. */
export type Release = () => Promise<void>

/** What a client adds up while it works: shared by every client of one measurement. */
export interface Counters {
  /** Requests sent to the backend (one request is one round trip: none of the subjects pipelines). */
  roundTrips: number
  /** Times the library stopped waiting and reported failure (redlock's retryCount, redis-semaphore's timeout). */
  gaveUp: number
}

/**
 * One user of one library on its own connection(s): the caller in the cycle test, a worker under contention.
 * In the scaling scenario many callers share one client, calling `lock` at once on distinct keys.
 */
export interface LockClient {
  /**
   * Takes the lock on `key`, waiting the library's own way while someone else holds it, and resolves once
   * it is held. A library that gives up waiting is asked again (and `gaveUp` counted), as a caller would.
   */
  lock(key: string): Promise<Release>
  close(): Promise<void>
  /**
   * When (`performance.now()`) this client last sent a request to take a lock: read right after `lock`
   * resolves, it is the attempt that was granted. Lets a hand-off be split into the release's round trip,
   * the time until the next holder's granting attempt left, and that attempt's round trip.
   */
  lastAttemptSentAt?(): number | undefined
}

/**
 * `ours`: this repository's Lock on one of its stores; `floor`: the raw client by hand; `peer`: another
 * library; `diagnostic`: a measurement that explains ours (our store called without Lock), not compared;
 * `semaphore`: a semaphore permit (ours or another library's), compared with the other semaphores.
 */
export type Role = 'ours' | 'floor' | 'peer' | 'diagnostic' | 'semaphore'

/** One library (in one configuration) on one store. */
export interface Subject {
  /** Unique in a run, e.g. `redis/redlock`. */
  id: string
  store: StoreId
  /** As the tables show it, e.g. `verrou (retry 10 ms)`. */
  label: string
  role: Role
  /** Whether it takes part in the uncontended cycles (retry settings do not matter there). */
  cycles: boolean
  contention: boolean
  /** How many may hold one key at once: a semaphore's limit. Default 1 (a mutex). */
  holders?: number
  /** A new client with connections of its own; its requests and give-ups are added to `counters`. */
  connect(counters: Counters, options?: ConnectOptions): Promise<LockClient>
}

export interface ConnectOptions {
  /**
   * Connections in the client's pool, on stores reached through a pool (PostgreSQL, MySQL); 1 when absent.
   * Redis and Upstash always use one connection, DynamoDB one client, memory one store.
   */
  poolSize?: number
  /** Keep the send time of each lock attempt (`LockClient.lastAttemptSentAt`): contention runs only. */
  timeAttempts?: boolean
}

/** Lease given to every lock: far longer than any hold, so no lock ever expires during a run. */
export const LEASE_MS = 10_000

export const newCounters = (): Counters => ({ roundTrips: 0, gaveUp: 0 })
