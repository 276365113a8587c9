import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ConnectOptions, LockClient } from '../subject.js'

/** How often a raw-floor waiter tries again: the short delay, as a hand-written loop would. */
export const FLOOR_POLL_MS = 10

/** The two atomic round trips a lock needs, written by hand against one client. */
export interface RawLock {
  /** One atomic request: takes the lock if it is free or its lease has ended. */
  tryAcquire(key: string, owner: string): Promise<boolean>
  /** One atomic request: frees the lock if `owner` still holds it. */
  release(key: string, owner: string): Promise<boolean>
  close(): Promise<void>
}

/** The floor as a client: try, sleep `FLOOR_POLL_MS`, try again; release checks it still owned the lock. */
export function pollingClient(options: ConnectOptions | undefined, raw: RawLock): LockClient {
  let sentAt: number | undefined
  // Timed only when asked (contention): the uncontended cycles stay exactly the two requests.
  const attempt = options?.timeAttempts
    ? (key: string, owner: string) => {
        sentAt = performance.now()
        return raw.tryAcquire(key, owner)
      }
    : (key: string, owner: string) => raw.tryAcquire(key, owner)
  return {
    ...(options?.timeAttempts ? { lastAttemptSentAt: () => sentAt } : {}),
    async lock(key) {
      const owner = randomUUID()
      while (!(await attempt(key, owner))) await sleep(FLOOR_POLL_MS)
      return async () => {
        if (!(await raw.release(key, owner))) throw new Error(`raw floor: "${key}" was no longer held by its owner`)
      }
    },
    close: () => raw.close(),
  }
}
