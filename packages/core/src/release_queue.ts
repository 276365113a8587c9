import type { Logger } from './logger.js'
import type { LockStore, Unsubscribe } from './store.js'
import { monotonicNow, sleep } from './timer.js'

/**
 * In-process waiters and wake-ups. A release notification that names the next owner (a queueing store's)
 * wakes the waiter of this process with that owner, if there is one; a nameless one wakes the first waiter
 * of this process that is not already awake: one round trip per release from this process, not one per
 * waiter. Across processes, the backend's own queue, notifications (and polling) do the rest.
 */

/** A waiter's place in the in-process queue of one key. */
export class ReleaseWaiter {
  #notified = false
  #handoff = false
  #wake: (() => void) | undefined
  readonly #queue: KeyQueue

  constructor(
    queue: KeyQueue,
    /** The owner id this waiter acquires for: a notification naming it wakes this waiter. */
    readonly owner: string,
  ) {
    this.#queue = queue
  }

  /** Settles once the key's subscription is active, or has failed (then this waiter just polls). */
  get ready(): Promise<void> {
    return this.#queue.ready
  }

  /** Whether the key's subscription is active: false while subscribing, and when subscribing failed. */
  get listening(): boolean {
    return this.#queue.active
  }

  /**
   * Since when (monotonic ms) this process hears every release of the key: when it saw the subscription
   * become active, or earlier when the store's subscription reaches further back; undefined if it is not
   * active.
   */
  get listeningSince(): number | undefined {
    return this.#queue.active ? this.#queue.activeSince : undefined
  }

  /** Sleeps at most `ms`, less if the key is released meanwhile (or was since the last attempt). */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.#notified) {
      this.#notified = false
      return Promise.resolve()
    }
    const woken = new Promise<void>((resolve) => {
      this.#wake = resolve
    })
    return sleep(ms, signal, woken).finally(() => {
      this.#wake = undefined
      this.#notified = false
    })
  }

  /** Woken by a release and not yet back at the store: a hand-off to this waiter is under way. */
  get handoffPending(): boolean {
    return this.#handoff
  }

  /** Called after each attempt at the store: the hand-off, if any, is over (won or lost). */
  attempted(): void {
    this.#handoff = false
  }

  /** Returns true if this waiter took the notification. */
  notify(): boolean {
    if (this.#notified) return false
    this.#notified = true
    this.#handoff = true
    this.#wake?.()
    return true
  }

  leave(): void {
    this.#queue.remove(this)
  }
}

/**
 * How long a key's subscription outlives its last waiter in this process. A process that waits on the same
 * key again soon (a worker loop, a job that runs every few seconds) finds it active: no new subscription,
 * and no extra attempt to cover a release that happened while subscribing.
 */
export const SUBSCRIPTION_LINGER_MS = 2_000

class KeyQueue {
  readonly waiters: ReleaseWaiter[] = []
  /** The subscription's end, once active; `undefined` when subscribing failed or was given up. */
  unsubscribe: Promise<Unsubscribe | undefined> = Promise.resolve(undefined)
  ready: Promise<void> = Promise.resolve()
  active = false
  /** Since when releases are heard: when the subscription became active here, or the store's `heardSince`. */
  activeSince: number | undefined
  /** The last notification (and the owner it named, if any): it may have come just before a waiter joined. */
  lastHeard: { owner: string | undefined; at: number } | undefined
  #lingering: ReturnType<typeof setTimeout> | undefined

  constructor(readonly onEmpty: () => void) {}

  /** `next`: the owner the store says should try now; nameless, the first waiter not yet awake. */
  notify(next?: string): void {
    this.lastHeard = { owner: next, at: monotonicNow() }
    if (next !== undefined) {
      for (const waiter of this.waiters) if (waiter.owner === next) waiter.notify()
      return
    }
    for (const waiter of this.waiters) {
      if (waiter.notify()) return
    }
  }

  add(waiter: ReleaseWaiter): void {
    clearTimeout(this.#lingering)
    this.#lingering = undefined
    this.waiters.push(waiter)
  }

  remove(waiter: ReleaseWaiter): void {
    const index = this.waiters.indexOf(waiter)
    if (index === -1) return
    this.waiters.splice(index, 1)
    if (this.waiters.length > 0) return
    if (!this.active) {
      this.onEmpty()
      return
    }
    clearTimeout(this.#lingering)
    this.#lingering = setTimeout(() => {
      this.#lingering = undefined
      if (this.waiters.length === 0) this.onEmpty()
    }, SUBSCRIPTION_LINGER_MS)
    // A lingering subscription never keeps the process alive by itself.
    this.#lingering.unref?.()
  }
}

const queues = new WeakMap<LockStore, Map<string, KeyQueue>>()

/**
 * Whether a release of `key` was just announced to a waiter of this process that has not tried yet. A new
 * acquirer then queues behind it instead of barging in: without this, a worker that releases and acquires
 * again in a loop wins every time and starves the waiters it just woke.
 */
export function handoffPending(store: LockStore, key: string): boolean {
  const queue = queues.get(store)?.get(key)
  return queue?.waiters.some((waiter) => waiter.handoffPending) ?? false
}

/**
 * A subscription slower than this is given up on: the waiter polls rather than stall. Well under the
 * renewal period of a place in a store's wait queue (a third of QUEUE_PLACE_LEASE_MS, 2 s), so a waiter
 * stuck subscribing renews its place in time and never loses it to those behind.
 */
const SUBSCRIBE_TIMEOUT_MS = 500

/** The store's `heardSince`, if it gave a usable one. */
function heardSinceOf(unsubscribe: Unsubscribe): number {
  const since = unsubscribe.heardSince
  return typeof since === 'number' && Number.isFinite(since) ? since : Number.POSITIVE_INFINITY
}

/** Ends a subscription; a throwing or rejecting unsubscribe is logged, never an unhandled rejection. */
function endSubscription(unsubscribe: Unsubscribe | undefined, key: string, logger: Logger): void {
  const warn = (error: unknown) => logger.warn({ key, err: error }, 'verrou: ending a release subscription failed')
  try {
    Promise.resolve(unsubscribe?.()).catch(warn)
  } catch (error) {
    warn(error)
  }
}

/** Resolves with the subscription, or `undefined` after `ms`; one that becomes active later is ended at once. */
function subscribeWithin(subscribing: Promise<Unsubscribe>, ms: number, key: string, logger: Logger) {
  return new Promise<Unsubscribe | undefined>((resolve) => {
    let late = false
    const timer = setTimeout(() => {
      late = true
      logger.warn({ key }, `verrou: subscribing to releases took longer than ${ms} ms, polling instead`)
      resolve(undefined)
    }, ms)
    subscribing.then(
      (unsubscribe) => {
        clearTimeout(timer)
        if (late) endSubscription(unsubscribe, key, logger)
        else resolve(unsubscribe)
      },
      (error: unknown) => {
        clearTimeout(timer)
        // Waiting still works without notifications: it falls back to polling at the retry delay.
        if (!late) logger.warn({ key, err: error }, 'verrou: subscribing to releases failed, polling instead')
        resolve(undefined)
      },
    )
  })
}

/**
 * Joins the queue of waiters for `key` on `store`, subscribing to the store's release notifications when
 * this is the first waiter. Returns at once; `waiter.ready` settles when the subscription is active.
 * Returns `undefined` when the store cannot notify: the caller then just polls.
 */
export function joinReleaseQueue(
  store: LockStore,
  key: string,
  owner: string,
  logger: Logger,
  /** When the caller's last attempt was sent: a notification naming `owner` since then wakes it at once. */
  attemptSentAt?: number,
): ReleaseWaiter | undefined {
  const subscribe = store.subscribeToReleases
  if (subscribe === undefined) return undefined

  let byKey = queues.get(store)
  if (byKey === undefined) {
    byKey = new Map()
    queues.set(store, byKey)
  }
  let queue = byKey.get(key)
  if (queue === undefined) {
    const keyQueues = byKey
    const created: KeyQueue = new KeyQueue(() => {
      if (keyQueues.get(key) === created) keyQueues.delete(key)
      void created.unsubscribe.then((unsubscribe) => endSubscription(unsubscribe, key, logger))
    })
    let subscribing: Promise<Unsubscribe>
    try {
      subscribing = Promise.resolve(
        subscribe.call(store, key, (next?: string) => created.notify(typeof next === 'string' ? next : undefined)),
      )
    } catch (error) {
      subscribing = Promise.reject(error)
    }
    created.unsubscribe = subscribeWithin(subscribing, SUBSCRIBE_TIMEOUT_MS, key, logger)
    created.ready = created.unsubscribe.then((unsubscribe) => {
      created.active = unsubscribe !== undefined
      if (unsubscribe !== undefined) created.activeSince = Math.min(monotonicNow(), heardSinceOf(unsubscribe))
    })
    byKey.set(key, created)
    queue = created
  }
  const waiter = new ReleaseWaiter(queue, owner)
  queue.add(waiter)
  // A release heard between the caller's attempt and this join, for it (or for anyone), is not lost.
  const heard = queue.lastHeard
  if (attemptSentAt !== undefined && heard !== undefined && heard.at >= attemptSentAt && (heard.owner ?? owner) === owner) {
    waiter.notify()
  }
  return waiter
}
