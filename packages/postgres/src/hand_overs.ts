import type { HeardHandOver } from './text_bytes.js'

/** A waiter's place as the last attempt that refused it left it. */
interface Place {
  /** performance.now() just before that attempt was sent. */
  sentAt: number
  /** The place lease it asked for, in ms. */
  lease: number
  /** The place's lease end as the server names it (see `placeMark` in sql.ts). */
  mark: string
  /** The token of a hand-over heard for exactly this place, not taken yet. */
  handedToken?: number
}

/** Past this many places, those whose lease surely ended are dropped (a waiter whose leaveQueue failed). */
const SWEEP_ABOVE = 10_000

/**
 * The places this store's waiters hold, so that a hand-over heard for one of them (a release that made it
 * the holder, see sql.ts) answers its next attempt without a round trip. A hand-over counts only for the
 * very place the waiter holds now: one heard late, for a place of an earlier wait, is ignored.
 */
export class HandOvers {
  readonly #places = new Map<string, Place>()

  /** An attempt sent at `sentAt` was refused and left `owner` the place `mark`, for `lease` ms. */
  placed(keyPayload: string, owner: string, sentAt: number, lease: number, mark: string): void {
    if (this.#places.size >= SWEEP_ABOVE) this.#sweep(sentAt)
    this.#places.set(`${keyPayload}\n${owner}`, { sentAt, lease, mark })
  }

  /** `owner` has no place any more (granted, left the queue, or refused without one). */
  forget(keyPayload: string, owner: string): void {
    this.#places.delete(`${keyPayload}\n${owner}`)
  }

  /**
   * A notification named `owner`. A hand-over is kept if it names the place `owner` holds. A plain
   * announcement comes after any hand-over before it (notifications arrive in commit order): one was a
   * force release or a leave that took that grant away, so a hand-over heard before it is dropped.
   */
  heard(keyPayload: string, owner: string, handOver: HeardHandOver | undefined): void {
    const place = this.#places.get(`${keyPayload}\n${owner}`)
    if (handOver === undefined) {
      if (place !== undefined) place.handedToken = undefined
      return
    }
    const token = Number(handOver.token)
    if (place === undefined || place.mark !== handOver.mark || !Number.isSafeInteger(token)) return
    place.handedToken = token
  }

  /**
   * The hand-over heard for `owner`, once: its token, and how long from `now` the grant surely lasts
   * unclaimed. The claim window ends no sooner than the place's lease, which began after its attempt was
   * sent (see release in sql.ts).
   */
  take(keyPayload: string, owner: string, now: number): { token: number; lease: number } | undefined {
    const id = `${keyPayload}\n${owner}`
    const place = this.#places.get(id)
    if (place?.handedToken === undefined) return undefined
    this.#places.delete(id)
    return { token: place.handedToken, lease: Math.max(0, place.sentAt + place.lease - now) }
  }

  #sweep(now: number): void {
    for (const [id, place] of this.#places) if (place.sentAt + place.lease < now) this.#places.delete(id)
  }
}
