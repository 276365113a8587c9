import { pairId } from './pair_id.js'

/** A waiter's place as the last attempt that refused it left it. */
interface Place {
  /** performance.now() just before that attempt was sent. */
  sentAt: number
  /** The place lease it asked for, in ms. */
  lease: number
  /** What names this very place on the store (its number, its lease end...): never the same for two waits. */
  place: string
  /** The token of a hand-over heard for exactly this place, not taken yet. */
  handedToken?: number
}

/** Past this many places, those whose lease surely ended are dropped (a waiter whose leaveQueue failed). */
const SWEEP_ABOVE = 10_000

/**
 * For a store whose process hears of hand-overs (see `HandOver`): the places its waiters hold, per key and
 * owner, so that a hand-over heard for one of them answers that waiter's next attempt without a round trip.
 * A hand-over counts only for the very place the waiter holds now: one heard late, for a place of an
 * earlier wait, names another place and is ignored. Keys are the store's own (a channel, a payload).
 */
export class HeardHandOvers {
  readonly #places = new Map<string, Place>()

  /** How many places are kept: 0 lets a store skip the bookkeeping on uncontended calls. */
  get size(): number {
    return this.#places.size
  }

  /** An attempt sent at `sentAt` was refused and left `owner` holding `place`, for `lease` ms. */
  placed(key: string, owner: string, sentAt: number, lease: number, place: string): void {
    if (this.#places.size >= SWEEP_ABOVE) this.#sweep(sentAt)
    const id = pairId(key, owner)
    const known = this.#places.get(id)
    // A hand-over heard while this attempt was out stays, when it was for this same place.
    const handedToken = known?.place === place ? known.handedToken : undefined
    this.#places.set(id, { sentAt, lease, place, handedToken })
  }

  /** `owner` holds no place any more (granted, or leaving the queue). */
  forget(key: string, owner: string): void {
    this.#places.delete(pairId(key, owner))
  }

  /** A hand-over of `place` to `owner`, with `token`, was heard. */
  heard(key: string, owner: string, place: string, token: number): void {
    const known = this.#places.get(pairId(key, owner))
    if (known === undefined || known.place !== place || !Number.isSafeInteger(token)) return
    known.handedToken = token
  }

  /** Something heard since took any hand-over to `owner` back (a force release, a leave): it is dropped. */
  withdrawn(key: string, owner: string): void {
    const known = this.#places.get(pairId(key, owner))
    if (known !== undefined) known.handedToken = undefined
  }

  /**
   * The hand-over heard for `owner`, once: its token, and how long from `now` the grant surely lasts
   * unclaimed (the claim window ends with the place lease, which began after its attempt was sent). None
   * once that time has passed: the window may be over, and only the store can tell (an attempt claims a
   * grant still there).
   */
  take(key: string, owner: string, now: number): { token: number; lease: number } | undefined {
    const id = pairId(key, owner)
    const known = this.#places.get(id)
    if (known?.handedToken === undefined) return undefined
    this.#places.delete(id)
    const lease = known.sentAt + known.lease - now
    return lease > 0 ? { token: known.handedToken, lease } : undefined
  }

  #sweep(now: number): void {
    for (const [id, known] of this.#places) if (known.sentAt + known.lease < now) this.#places.delete(id)
  }
}
