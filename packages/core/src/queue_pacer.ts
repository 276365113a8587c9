/** How often the head of the queue polls a queueing store that cannot announce releases, at most (and per place behind it, for the others). */
export const QUEUE_HEAD_POLL_MS = 20

/** Polls the head makes per expected hand-over once it leads: the lock sits idle about an eighth of a hand-over at most. */
const HEAD_POLLS_PER_HANDOVER = 4

/**
 * Paces the attempts of one waiter in the queue of a store that cannot announce releases (MySQL,
 * DynamoDB, Upstash), so that the lock does not sit idle between a release and the head's next poll, and
 * the waiters behind do not poll for nothing.
 *
 * It learns the queue's pace (ms per hand-over) from how fast its own position drops: the time between
 * the attempt that first saw a position and the one that first saw a lower one, per place gained. Both
 * attempts lag the moves they see by the same poll interval, so the estimate is not biased by it. It needs
 * no clock but the caller's and nothing from the store beyond `position`.
 * - Unknown pace: the head polls every QUEUE_HEAD_POLL_MS / 4, the others once after QUEUE_HEAD_POLL_MS to
 *   learn it.
 * - Known pace: the head and the next in line poll four times per hand-over (the next in line so that it
 *   polls as the head before the holder ahead of it is done), a waiter `p` places back every `(p - 1) / 2`
 *   hand-overs. The pace a waiter measures includes the idle time its own polling leaves, so it polls well
 *   inside it: polling at the pace itself settles at a pace several times the hold.
 * - When its position stays put longer than a hand-over (a holder that keeps the lock for long), each pause
 *   doubles: such a holder costs what it did before, a poll every QUEUE_HEAD_POLL_MS at the head.
 * - Never more often than one attempt's round trip (a waiter spends at most half its time asking), never
 *   less often than QUEUE_HEAD_POLL_MS per place from the head.
 */
export class QueuePacer {
  /** Estimated ms per hand-over; unknown until the position has dropped once. */
  #pace: number | undefined
  /** The position last seen, and when it was first seen. */
  #place: { position: number; since: number } | undefined
  #pause = 0

  /**
   * The pause before the next attempt, after a refusal that put this waiter at `position` (0 = head).
   * `at`: when the refusal arrived; `roundTrip`: how long that attempt took (both in ms on the caller's clock).
   */
  next(position: number, at: number, roundTrip: number): number {
    const place = this.#place
    if (place === undefined || position !== place.position) {
      if (place !== undefined && position < place.position) {
        const sample = (at - place.since) / (place.position - position)
        this.#pace = this.#pace === undefined ? sample : (this.#pace + sample) / 2
      }
      this.#place = { position, since: at }
      this.#pause = this.#firstPause(position)
    } else if (at - place.since > (this.#pace ?? QUEUE_HEAD_POLL_MS)) {
      this.#pause *= 2
    }
    this.#pause = Math.min(QUEUE_HEAD_POLL_MS * (position + 1), Math.max(1, roundTrip, this.#pause))
    return this.#pause
  }

  #firstPause(position: number): number {
    const pace = this.#pace
    if (position === 0) return (pace ?? QUEUE_HEAD_POLL_MS) / HEAD_POLLS_PER_HANDOVER
    if (pace === undefined) return QUEUE_HEAD_POLL_MS
    return position === 1 ? pace / HEAD_POLLS_PER_HANDOVER : (pace * (position - 1)) / 2
  }
}
