import type { Redis } from 'ioredis'
import semaphore from 'redis-semaphore'
import type { Counters, LockClient, Subject } from '../subject.js'

// A CommonJS package: its named exports are properties of the default import.
const { Mutex, TimeoutError } = semaphore

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
          for (;;) {
            try {
              await mutex.acquire()
              return () => mutex.release()
            } catch (error) {
              if (!(error instanceof TimeoutError)) throw error
              counters.gaveUp += 1
            }
          }
        },
        async close() {
          await connection.quit()
        },
      }
    },
  }
}
