import type { Redis } from 'ioredis'
import { type Counters, LEASE_MS, type LockClient, type Subject } from '../subject.js'

// redlock 5 beta ships its types outside what its package.json "exports" reaches: import the code by name,
// type it from the file itself.
type RedlockModule = typeof import('../../node_modules/redlock/dist/index.js')
const REDLOCK = 'redlock'
const { default: Redlock, ExecutionError } = (await import(REDLOCK)) as RedlockModule

/**
 * redlock 5 on one Redis with its default settings: 10 retries 200 ms apart (plus up to 200 ms of jitter),
 * then `ExecutionError`. A worker that gets it counts a give-up and asks again.
 */
export function redlockSubject(connect: (counters: Counters) => Redis): Subject {
  return {
    id: 'redis/redlock',
    store: 'redis',
    label: 'redlock 5.0.0-beta.2',
    role: 'peer',
    cycles: true,
    contention: true,
    async connect(counters): Promise<LockClient> {
      const connection = connect(counters)
      const redlock = new Redlock([connection])
      // Without a listener, every lost vote during a retry is printed as an unhandled 'error' event.
      redlock.on('error', () => {})
      return {
        async lock(key) {
          for (;;) {
            try {
              const lock = await redlock.acquire([key], LEASE_MS)
              return async () => {
                await lock.release()
              }
            } catch (error) {
              if (!(error instanceof ExecutionError)) throw error
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
