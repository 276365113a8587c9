import { type CancelTimer, startTimer } from './timer.js'

/** One waiter's place: its owner and when its lease ends, on the monotonic clock. */
interface Place {
  owner: string
  leaseEnd: number
}

/**
 * The FIFO queues of waiters of the memory store, one per key. Places have leases on the monotonic clock; a
 * place whose lease ended is dead, skipped and dropped by every read. A timer per key follows the head's
 * lease, so that when the head dies the next live waiter is announced (`onHeadDied`) and a queue of dead
 * places is dropped: nothing is kept for a key once its last place died.
 */
export class WaitQueues {
  readonly #queues = new Map<string, { places: Place[]; cancelTimer: CancelTimer | undefined }>()

  /** `onHeadDied(key)`: the head's lease ended and a live waiter stands behind it. */
  constructor(readonly onHeadDied: (key: string) => void) {}

  /** Keys with a queue: counted in the store's footprint. */
  keys(): IterableIterator<string> {
    return this.#queues.keys()
  }

  /** The owner of the first live place, dropping dead places on the way. */
  head(key: string, now: number): string | undefined {
    return this.#live(key, now)[0]?.owner
  }

  /** Removes `owner`'s place; returns whether it was the first live one. */
  remove(key: string, owner: string, now: number): boolean {
    const places = this.#live(key, now)
    const index = places.findIndex((place) => place.owner === owner)
    if (index === -1) return false
    places.splice(index, 1)
    this.#settle(key, now)
    return index === 0
  }

  /** Appends `owner` unless it has a place, renews its lease; returns its 0-based position among live places. */
  join(key: string, owner: string, lease: number, now: number): number {
    let queue = this.#queues.get(key)
    if (queue === undefined) {
      queue = { places: [], cancelTimer: undefined }
      this.#queues.set(key, queue)
    }
    const places = this.#live(key, now)
    let index = places.findIndex((place) => place.owner === owner)
    if (index === -1) {
      index = places.push({ owner, leaseEnd: now + lease }) - 1
    } else {
      places[index]!.leaseEnd = now + lease
    }
    this.#settle(key, now)
    return index
  }

  /** The live places of `key` (the queue's own array, pruned of dead places). */
  #live(key: string, now: number): Place[] {
    const queue = this.#queues.get(key)
    if (queue === undefined) return []
    const live = queue.places.filter((place) => place.leaseEnd > now)
    if (live.length !== queue.places.length) queue.places = live
    return queue.places
  }

  /** Drops an empty queue, or points its timer at the head's lease end. */
  #settle(key: string, now: number): void {
    const queue = this.#queues.get(key)
    if (queue === undefined) return
    queue.cancelTimer?.()
    queue.cancelTimer = undefined
    const head = queue.places[0]
    if (head === undefined) {
      this.#queues.delete(key)
      return
    }
    const watched = head
    queue.cancelTimer = startTimer(
      Math.max(0, head.leaseEnd - now),
      () => {
        const at = performance.now()
        const next = this.head(key, at)
        this.#settle(key, at)
        // The head renewed in time: the timer now follows its new lease end.
        if (next !== undefined && next !== watched.owner) this.onHeadDied(key)
      },
      { unref: true },
    )
  }
}
