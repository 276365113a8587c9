import type { HoldingStatus } from './keep_alive.js'
import { monotonicNow } from './timer.js'

/** One acquisition as a Lock knows it. `ended` says how it stopped being that Lock's. */
interface Holding {
  /** Local lease end on the monotonic clock; `null` never expires. */
  leaseEnd: number | null
  ended?: 'released' | 'lost'
}

/**
 * What a Lock knows of its own lease, for the local estimates (`isExpired`, `getRemainingTime`) and for
 * not re-acquiring what it holds. The store has the final word; this only remembers what it last said,
 * on the monotonic clock. Every change bumps `version`, so that an answer to a request sent before the
 * change (a late extend) cannot undo it.
 */
export class LeaseRecord {
  #holding: Holding | undefined
  #version = 0

  /** `expiresAt`: when restoring a held lock, its lease end in epoch ms (`null` never expires). */
  constructor(expiresAt?: number | null) {
    if (expiresAt === undefined) return
    // Serialized locks carry the wall clock (the only one two processes share); from here on, monotonic.
    this.#holding = { leaseEnd: expiresAt === null ? null : monotonicNow() + (expiresAt - Date.now()) }
  }

  get version(): number {
    return this.#version
  }

  /** Whether an acquisition is on record, even one whose estimate has run out. */
  get recorded(): boolean {
    return this.#holding !== undefined
  }

  /** ms left: 0 when nothing is held or the estimate ran out, `null` when held without expiry. */
  remaining(): number | null {
    const holding = this.#holding
    if (holding === undefined) return 0
    if (holding.leaseEnd === null) return null
    return Math.max(0, Math.floor(holding.leaseEnd - monotonicNow()))
  }

  /** Held with time left on the estimate. */
  holds(): boolean {
    return this.remaining() !== 0
  }

  /** The lease end in epoch ms, for serialize(); `null` when never expiring or not held. */
  expiresAtEpoch(): number | null {
    const remaining = this.remaining()
    return this.#holding === undefined || remaining === null ? null : Date.now() + remaining
  }

  granted(sentAt: number, ttl: number | null): void {
    this.end('lost')
    this.#holding = { leaseEnd: ttl === null ? null : sentAt + ttl }
  }

  /** The store extended the lease of a request sent at `version`; ignored if anything changed since. */
  extended(version: number, sentAt: number, ttl: number | null): void {
    if (version !== this.#version) return
    const leaseEnd = ttl === null ? null : sentAt + ttl
    if (this.#holding !== undefined) {
      this.#holding.leaseEnd = leaseEnd
    } else {
      // Another Lock of the same owner acquired it: the store says this owner holds it, so this Lock does.
      this.#holding = { leaseEnd }
      this.#version++
    }
  }

  /** The store refused a request sent at `version`: the lease is gone, unless something changed since. */
  refused(version: number): void {
    if (version === this.#version) this.end('lost')
  }

  end(how: 'released' | 'lost'): void {
    if (this.#holding !== undefined) this.#holding.ended = how
    this.#holding = undefined
    this.#version++
  }

  /** Follows the current acquisition from now on: still held, released by its Lock, or lost. */
  watch(): () => HoldingStatus {
    const watched = this.#holding
    return () => {
      if (watched !== undefined && this.#holding === watched) return 'held'
      return watched?.ended === 'released' ? 'released' : 'lost'
    }
  }
}
