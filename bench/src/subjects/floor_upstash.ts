import type { Redis } from '@upstash/redis'
import { type Counters, LEASE_MS, type Subject } from '../subject.js'
import { pollingClient } from './floor_polling.js'
import { COMPARE_AND_DELETE, COMPARE_AND_DELETE_SHA, isNoScript } from './floor_redis.js'

/** @upstash/redis by hand: `SET NX PX` and EVALSHA of the compare-and-delete, one REST request each. */
export function upstashFloorSubject(connect: (counters: Counters) => Redis): Subject {
  return {
    id: 'upstash/floor',
    store: 'upstash',
    label: 'raw floor (@upstash/redis)',
    role: 'floor',
    cycles: true,
    contention: true,
    async connect(counters, options) {
      const client = connect(counters)
      await client.scriptLoad(COMPARE_AND_DELETE)
      return pollingClient(options, {
        async tryAcquire(key, owner) {
          return (await client.set(key, owner, { nx: true, px: LEASE_MS })) === 'OK'
        },
        async release(key, owner) {
          try {
            return (await client.evalsha(COMPARE_AND_DELETE_SHA, [key], [owner])) === 1
          } catch (error) {
            // As on Redis: a SCRIPT FLUSH by someone else sharing the server is answered by loading it again.
            if (!isNoScript(error)) throw error
            await client.scriptLoad(COMPARE_AND_DELETE)
            return (await client.evalsha(COMPARE_AND_DELETE_SHA, [key], [owner])) === 1
          }
        },
        async close() {},
      })
    },
  }
}
