import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { type Counters, LEASE_MS, type Subject } from '../subject.js'
import { pollingClient } from './floor_polling.js'

/** Deletes the lock only if it still holds the caller's owner id: the one script a safe release needs. */
export const COMPARE_AND_DELETE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`
export const COMPARE_AND_DELETE_SHA = createHash('sha1').update(COMPARE_AND_DELETE).digest('hex')

/** Whether Redis answered that the script is not loaded (after a SCRIPT FLUSH or a restart). */
export const isNoScript = (error: unknown): boolean => error instanceof Error && error.message.includes('NOSCRIPT')

/** ioredis by hand: `SET key owner PX ttl NX` to acquire, EVALSHA of a compare-and-delete to release. */
export function redisFloorSubject(connect: (counters: Counters) => Redis): Subject {
  return {
    id: 'redis/floor',
    store: 'redis',
    label: 'raw floor (ioredis)',
    role: 'floor',
    cycles: true,
    contention: true,
    async connect(counters, options) {
      const connection = connect(counters)
      // Loaded once up front, as an application would at start-up, so every release is one EVALSHA.
      await connection.script('LOAD', COMPARE_AND_DELETE)
      return pollingClient(options, {
        async tryAcquire(key, owner) {
          return (await connection.set(key, owner, 'PX', LEASE_MS, 'NX')) === 'OK'
        },
        async release(key, owner) {
          try {
            return (await connection.evalsha(COMPARE_AND_DELETE_SHA, 1, key, owner)) === 1
          } catch (error) {
            // The server is shared: someone else's SCRIPT FLUSH must not fail the run. Load it again, once.
            if (!isNoScript(error)) throw error
            await connection.script('LOAD', COMPARE_AND_DELETE)
            return (await connection.evalsha(COMPARE_AND_DELETE_SHA, 1, key, owner)) === 1
          }
        },
        async close() {
          await connection.quit()
        },
      })
    },
  }
}
