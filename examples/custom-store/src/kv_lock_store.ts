import type { AcquireResult, LockStore, WaitOptions } from '@verrou/core'
import type { VersionedKv } from './versioned_kv.js'

/** A waiter's place in the queue of a key: it is dead once `leaseEnd` (on the service's clock) has passed. */
export interface Place {
  owner: string
  leaseEnd: number
}

/** What the driver keeps per key. `token` stays when the lock is released, so tokens keep increasing. */
export interface LockRecord {
  owner: string | null
  /** On the service's clock; null: never expires. */
  expiresAt: number | null
  token: number
  /** The waiters, first come first served. */
  queue: Place[]
}

/**
 * A third-party Verrou driver: locks on any service that offers compare-and-set. Each operation reads the
 * record and writes it back only if nobody wrote in between, retrying on a lost race, so the outcome is
 * the same as one atomic operation. It is a queueing store: the waiters of a key stand in a FIFO queue kept
 * in the same record, so the longest waiter gets the lock, whichever process it runs in.
 */
export class KvLockStore implements LockStore {
  constructor(readonly kv: VersionedKv<LockRecord>) {}

  async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    for (;;) {
      const [entry, now] = await Promise.all([this.kv.get(key), this.kv.now()])
      const record = entry?.value ?? { owner: null, expiresAt: null, token: 0, queue: [] }
      // Dead places are skipped, and dropped by whatever this call writes.
      const queue = record.queue.filter((place) => place.leaseEnd > now)
      const expiresIn = record.expiresAt === null ? undefined : record.expiresAt - now
      if (!isHeld(record, now) && (queue.length === 0 || queue[0]!.owner === owner)) {
        const token = record.token + 1
        // The caller was first in line (or nobody waited): its place, if any, goes.
        const next: LockRecord = { owner, expiresAt: ttl === null ? null : now + ttl, token, queue: queue.slice(1) }
        if ((await this.kv.compareAndSet(key, entry?.version ?? 0, next)) !== null) return { acquired: true, fencingToken: token }
        continue
      }
      // Refused. Without `wait` the queue is left as it is; with it, the caller joins at the tail or renews.
      if (wait === undefined)
        return isHeld(record, now) && expiresIn !== undefined ? { acquired: false, expiresIn } : { acquired: false }
      let position = queue.findIndex((place) => place.owner === owner)
      if (position === -1) {
        position = queue.length
        queue.push({ owner, leaseEnd: now + wait.lease })
      } else queue[position] = { owner, leaseEnd: now + wait.lease }
      if ((await this.kv.compareAndSet(key, entry?.version ?? 0, { ...record, queue })) !== null) {
        return isHeld(record, now) && expiresIn !== undefined
          ? { acquired: false, expiresIn, position }
          : { acquired: false, position }
      }
    }
  }

  release(key: string, owner: string): Promise<boolean> {
    return this.#updateOwned(key, owner, (record) => ({ ...record, owner: null, expiresAt: null }))
  }

  extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    return this.#updateOwned(key, owner, (record, now) => ({ ...record, expiresAt: ttl === null ? null : now + ttl }))
  }

  async forceRelease(key: string): Promise<void> {
    for (;;) {
      const entry = await this.kv.get(key)
      if (!entry || entry.value.owner === null) return
      const released: LockRecord = { ...entry.value, owner: null, expiresAt: null }
      if ((await this.kv.compareAndSet(key, entry.version, released)) !== null) return
    }
  }

  async isLocked(key: string): Promise<boolean> {
    const [entry, now] = await Promise.all([this.kv.get(key), this.kv.now()])
    return entry !== undefined && isHeld(entry.value, now)
  }

  /** A waiter that gives up takes its place out of the queue, so the next one does not wait out its lease. */
  async leaveQueue(key: string, owner: string): Promise<void> {
    for (;;) {
      const entry = await this.kv.get(key)
      if (!entry?.value.queue.some((place) => place.owner === owner)) return
      const queue = entry.value.queue.filter((place) => place.owner !== owner)
      if ((await this.kv.compareAndSet(key, entry.version, { ...entry.value, queue })) !== null) return
    }
  }

  /** Changes the record only while `owner` holds an unexpired lease on it. */
  async #updateOwned(key: string, owner: string, change: (record: LockRecord, now: number) => LockRecord): Promise<boolean> {
    for (;;) {
      const [entry, now] = await Promise.all([this.kv.get(key), this.kv.now()])
      if (!entry || entry.value.owner !== owner || !isHeld(entry.value, now)) return false
      if ((await this.kv.compareAndSet(key, entry.version, change(entry.value, now))) !== null) return true
    }
  }
}

function isHeld(record: LockRecord, now: number): boolean {
  return record.owner !== null && (record.expiresAt === null || record.expiresAt > now)
}
