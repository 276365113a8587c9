import type { AcquireResult, LockStore } from '@verrou/core'
import type { VersionedKv } from './versioned_kv.js'

/** What the driver keeps per key. `token` stays when the lock is released, so tokens keep increasing. */
export interface LockRecord {
  owner: string | null
  /** On the service's clock; null: never expires. */
  expiresAt: number | null
  token: number
}

/**
 * A third-party Verrou driver: locks on any service that offers compare-and-set. Each operation reads the
 * record and writes it back only if nobody wrote in between, retrying on a lost race, so the outcome is
 * the same as one atomic operation.
 */
export class KvLockStore implements LockStore {
  constructor(readonly kv: VersionedKv<LockRecord>) {}

  async acquire(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    for (;;) {
      const [entry, now] = await Promise.all([this.kv.get(key), this.kv.now()])
      const record = entry?.value
      if (record && isHeld(record, now)) {
        return record.expiresAt === null ? { acquired: false } : { acquired: false, expiresIn: record.expiresAt - now }
      }
      const token = (record?.token ?? 0) + 1
      const next: LockRecord = { owner, expiresAt: ttl === null ? null : now + ttl, token }
      if ((await this.kv.compareAndSet(key, entry?.version ?? 0, next)) !== null) return { acquired: true, fencingToken: token }
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
