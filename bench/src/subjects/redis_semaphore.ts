import type { Redis } from 'ioredis'
import semaphore from 'redis-semaphore'
import type { Counters, LockClient, Subject } from '../subject.js'
import { SEMAPHORE_LIMIT } from './verrou_semaphore.js'

// A CommonJS package: its named exports are properties of the default import.
const { Mutex, Semaphore, TimeoutError } = semaphore

/** Takes the lock, asking again after each `TimeoutError` (counted as a give-up), as a caller would. */
async function acquireUntilHeld(lock: { acquire(): Promise<void> }, counters: Counters): Promise<void> {
  for (;;) {
    try {
      await lock.acquire()
      return
    } catch (error) {
      if (!(error instanceof TimeoutError)) throw error
      counters.gaveUp += 1
    }
  }
}

/**
 * redis-semaphore's Mutex with its defaults: a 10 s lease, refreshed every 8 s, polling every 10 ms for at
 * most 10 s before `TimeoutError` (then the worker counts a give-up and asks again).
 */
export function redisSemaphoreSubject(connect: (counters: Counters) => Redis): Subject {
  return {
    id: 'redis/redis-semaphore',
    store: 'redis',
    label: 'redis-semaphore 5.8.0 (Mutex)',
    role: 'peer',
    cycles: true,
    contention: true,
    async connect(counters): Promise<LockClient> {
      const connection = connect(counters)
      return {
        async lock(key) {
          const mutex = new Mutex(connection, key)
          await acquireUntilHeld(mutex, counters)
          return () => mutex.release()
        },
        async close() {
          await connection.quit()
        },
      }
    },
  }
}

/** redis-semaphore's Semaphore with its defaults (as the Mutex above), `SEMAPHORE_LIMIT` permits per key. */
export function redisSemaphoreSemaphoreSubject(connect: (counters: Counters) => Redis): Subject {
  return {
    id: 'redis/redis-semaphore-semaphore',
    store: 'redis',
    label: `redis-semaphore 5.8.0 (Semaphore, limit ${SEMAPHORE_LIMIT})`,
    role: 'semaphore',
    cycles: true,
    contention: true,
    holders: SEMAPHORE_LIMIT,
    async connect(counters): Promise<LockClient> {
      const connection = connect(counters)
      return {
        async lock(key) {
          const permit = new Semaphore(connection, key, SEMAPHORE_LIMIT)
          await acquireUntilHeld(permit, counters)
          return () => permit.release()
        },
        async close() {
          await connection.quit()
        },
      }
    },
  }
}
