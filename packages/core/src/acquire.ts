import { describeValue } from './describe_value.js'
import { E_INVALID_ARGUMENT } from './errors.js'
import type { Logger } from './logger.js'
import { QueuePacer } from './queue_pacer.js'
import { handoffPending, joinReleaseQueue, type ReleaseWaiter } from './release_queue.js'
import { pauseAfter, type RetryOptions, type RetryPolicy, resolveRetryPolicy } from './retry_policy.js'
import type { AcquireResult, LockStore, WaitOptions } from './store.js'
import { type CallBounds, GAVE_UP } from './store_call.js'
import { monotonicNow, sleep } from './timer.js'

export interface AcquireOptions {
  retry?: RetryOptions
  /** Stops waiting at once: `acquire` rejects with the signal's reason and leaves nothing held. */
  signal?: AbortSignal
}

/** Validates `acquire` / `run` options before anything reaches the store; retry defaults come from `base`. */
export function resolveAcquireOptions(
  options: AcquireOptions,
  base: RetryPolicy,
): { policy: RetryPolicy; signal: AbortSignal | undefined } {
  if (options === null || typeof options !== 'object') {
    throw new E_INVALID_ARGUMENT(`options must be an object, got ${describeValue(options)}`)
  }
  const { signal } = options
  if (signal !== undefined && !(typeof signal === 'object' && signal !== null && typeof signal.aborted === 'boolean')) {
    throw new E_INVALID_ARGUMENT(`signal must be an AbortSignal, got ${describeValue(signal)}`)
  }
  return { policy: resolveRetryPolicy(options.retry, base), signal }
}

/**
 * How long a waiter's place in a queueing store's wait queue is kept without renewal, in ms. A waiter that
 * dies holds up the next one for at most this long (its claim window); a live one renews every third of it.
 */
export const QUEUE_PLACE_LEASE_MS = 2_000
/** Longest wait for leaving the queue on giving up: a place not removed dies with its lease anyway. */
const LEAVE_QUEUE_WAIT_MS = 1_000

/** What the acquire loop needs from a Lock. */
export interface AcquireTarget {
  store: LockStore
  key: string
  /** The owner id the Lock acquires for: a release notification naming it wakes this waiter. */
  owner: string
  logger: Logger
  /**
   * One round trip; records a grant. GAVE_UP when abandoned at `bounds.deadline` (a late grant is released).
   * `wait`: keep a place in the store's wait queue.
   */
  attempt(bounds: CallBounds, wait?: WaitOptions): Promise<AcquireResult | typeof GAVE_UP>
  /** Removes the owner's place from the store's wait queue (queueing stores only). */
  leaveQueue(): Promise<void>
  /** Whether this Lock holds the lock now: a concurrent acquire of the same Lock may have won it. */
  holds(): boolean
}

/** The wait-queue options of every acquire that will wait on a queueing store; stores only read them. */
const QUEUE_WAIT: WaitOptions = Object.freeze({ lease: QUEUE_PLACE_LEASE_MS })

/** Whether an acquire under `policy` may wait at all (else it is exactly one attempt). */
export function willWait(policy: RetryPolicy): boolean {
  return policy.timeout > 0 && policy.attempts > 1
}

/** What an acquire that will wait sends with each attempt: a place in the store's queue, if it keeps one. */
export function queueWait(store: LockStore, policy: RetryPolicy): WaitOptions | undefined {
  return willWait(policy) && typeof store.leaveQueue === 'function' ? QUEUE_WAIT : undefined
}

/** A first attempt the caller already made (sent at `startedAt`, with `queueWait`) and that did not acquire. */
export interface FirstAttempt {
  result: AcquireResult | typeof GAVE_UP
  startedAt: number
}

/** Waits for the key's release subscription to be active; false when the deadline came first. */
async function subscriptionReady(waiter: ReleaseWaiter, deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
  let ready = false
  const settled = waiter.ready.then(() => {
    ready = true
  })
  await sleep(Math.max(0, deadline - monotonicNow()), signal, settled)
  return ready
}

/** Whether `waiter` hears every release announced since `time`, so none since then can have gone unheard. */
function heardSince(waiter: ReleaseWaiter, time: number): boolean {
  return (waiter.listeningSince ?? Number.POSITIVE_INFINITY) <= time
}

/** Gives up a place in the wait queue: bounded, and a failure is only logged (the place dies with its lease). */
export async function leaveQueue(target: AcquireTarget): Promise<void> {
  const leaving = target.leaveQueue().catch((error: unknown) => {
    target.logger.warn({ key: target.key, err: error }, 'verrou: leaving the wait queue failed')
  })
  await sleep(LEAVE_QUEUE_WAIT_MS, undefined, leaving)
}

/**
 * The pause before the next attempt on a queueing store: until a notification naming this owner (the
 * caller's sleep wakes on it), but never past the renewal of its place. Without notifications the waiter's
 * `pacer` times its polls by its place and the queue's pace (see QueuePacer), and never less often than its
 * retry delay or its renewal: a waiter that only learnt it leads at its next renewal would leave the lock
 * idle for that long.
 */
function queuedPause(
  policy: RetryPolicy,
  attempt: number,
  refused: { position?: number; roundTrip: number },
  listening: boolean,
  pacer: QueuePacer,
): number {
  const renewal = QUEUE_PLACE_LEASE_MS / 3
  if (listening) return renewal
  const paced =
    refused.position === undefined ? Number.POSITIVE_INFINITY : pacer.next(refused.position, monotonicNow(), refused.roundTrip)
  return Math.min(pauseAfter(policy, attempt), renewal, paced)
}

/**
 * The acquire loop: attempts at the store, pauses as the retry policy says, woken early by releases
 * (through the in-process release queue) and by the holder's lease running out.
 *
 * On a queueing store (one with `leaveQueue`), a caller that will wait keeps a place in the store's FIFO
 * queue: every attempt renews it, and giving up (deadline, attempts, abort, storage error) leaves it, so
 * that a waiter that gave up never holds up the next.
 *
 * The signal and the deadline bound all of it: subscribing, sleeping, and every attempt after the first
 * (an attempt in flight at the deadline is abandoned and its late grant released). The first attempt is
 * always made and awaited, bounded only by the signal and the operation timeout, so `timeout: 0` is
 * exactly one attempt.
 */
export async function acquireWithRetry(
  target: AcquireTarget,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  first?: FirstAttempt,
): Promise<boolean> {
  if (first === undefined) signal?.throwIfAborted()
  const deadline = (first === undefined ? monotonicNow() : first.startedAt) + policy.timeout
  const { store, key, owner, logger } = target
  const wait = queueWait(store, policy)
  let waiter: ReleaseWaiter | undefined
  let subscribed = false
  /** Settles once the key's subscription, still being set up, is active (or has failed); then `undefined`. */
  let subscribing: Promise<void> | undefined
  /** How many pauses in a row were cut short by the holder's lease end (see below). */
  let hintedInARow = 0
  const pacer = new QueuePacer()
  // The first attempt, if made already, may have left a place in the queue.
  let queued = first !== undefined && wait !== undefined
  try {
    // A queueing store keeps order itself; otherwise this process keeps a release it announced for the
    // waiter it woke. (A caller that made the first attempt itself checked this before.)
    if (first === undefined && wait === undefined && willWait(policy) && handoffPending(store, key)) {
      // The lock is being handed to a waiter that was here first: queue behind it rather than barge in.
      subscribed = true
      waiter = joinReleaseQueue(store, key, owner, logger)
      if (waiter !== undefined) {
        if (!(await subscriptionReady(waiter, deadline, signal))) return false
        await waiter.sleep(Math.max(0, Math.min(pauseAfter(policy, 1), deadline - monotonicNow())), signal)
      }
    }
    for (let attempt = 1; ; attempt++) {
      // Past the deadline, a retry could only be abandoned at once (and its grant, if any, given back).
      if (attempt > 1 && monotonicNow() >= deadline) return false
      // Sent with `wait`, an attempt may leave a place behind even if it fails or is abandoned.
      if (wait !== undefined) queued = true
      // The first attempt, when the caller made it, was sent when it started.
      const attemptSentAt = attempt === 1 && first !== undefined ? first.startedAt : monotonicNow()
      const result =
        attempt === 1 && first !== undefined
          ? first.result
          : await target.attempt(attempt === 1 ? { signal } : { signal, deadline }, wait)
      waiter?.attempted()
      if (result === GAVE_UP) return false
      if (result.acquired) {
        queued = false
        return true
      }
      if (attempt >= policy.attempts || target.holds()) return false
      const remaining = deadline - monotonicNow()
      if (remaining <= 0) return false
      if (!subscribed) {
        // Subscribe once we know we must wait, then try again at once: the lock may have been released
        // between the attempt and the subscription becoming active. Unless this process was already
        // listening on the key when the attempt was sent, or the store's subscription reaches back that far
        // (it replays what it heard meanwhile): then such a release was heard.
        subscribed = true
        waiter = joinReleaseQueue(store, key, owner, logger, attemptSentAt)
        if (waiter !== undefined && !heardSince(waiter, attemptSentAt)) {
          if (wait === undefined) {
            if (!(await subscriptionReady(waiter, deadline, signal))) return false
            if (!heardSince(waiter, attemptSentAt)) continue
          } else {
            // A queueing store: poll as on one that cannot announce until the subscription is active, then
            // try at once. Opening a listener connection can take long on a busy machine, and the head of
            // the queue would leave the lock idle meanwhile.
            subscribing = waiter.ready.then(() => {
              subscribing = undefined
            })
          }
        }
      }
      // The subscription became active after this attempt was sent: a release announced before then went
      // unheard, so try again at once.
      if (subscribing === undefined && (waiter?.listeningSince ?? Number.NEGATIVE_INFINITY) > attemptSentAt) continue
      const roundTrip = monotonicNow() - attemptSentAt
      const plan = (listening: boolean) =>
        wait === undefined
          ? pauseAfter(policy, attempt)
          : queuedPause(policy, attempt, { position: result.position, roundTrip }, listening, pacer)
      let pause = Math.min(plan(waiter?.listening === true), remaining)
      // Wake when the holder's lease is due to end rather than sleep past it. A timer may fire a little
      // before the store's clock agrees, so a waiter woke by a hint takes the next one too, but each one
      // after the first no sooner than 2, 4, 8... ms: one that woke a tick early does not sleep its whole
      // retry delay, and a store whose hint keeps saying "now" cannot make the waiter spin.
      const expiresIn = result.expiresIn
      const hint = expiresIn === undefined ? undefined : Math.max(expiresIn + 1, hintedInARow === 0 ? 0 : 2 ** hintedInARow)
      if (hint !== undefined && hint < pause) {
        pause = hint
        hintedInARow++
      } else if (expiresIn === undefined) {
        hintedInARow = 0
      }
      // Still subscribing: the pause ends early once the subscription is active. If it reaches back before
      // this attempt (the store replayed what it heard meanwhile), nothing went unheard: the waiter sleeps
      // on as a listening one would, woken by a release. Otherwise the next attempt goes at once.
      if (subscribing !== undefined) {
        const pauseStarted = monotonicNow()
        await sleep(pause, signal, subscribing)
        if (waiter !== undefined && heardSince(waiter, attemptSentAt)) {
          const listeningPause = Math.min(plan(true), remaining, hint ?? Number.POSITIVE_INFINITY)
          await waiter.sleep(Math.max(0, pauseStarted + listeningPause - monotonicNow()), signal)
        }
        continue
      }
      await (waiter ? waiter.sleep(pause, signal) : sleep(pause, signal))
    }
  } finally {
    waiter?.leave()
    if (queued) await leaveQueue(target)
  }
}
