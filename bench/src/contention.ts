import { setTimeout as sleep } from 'node:timers/promises'
import { warmUp } from './cycles.js'
import { type Counters, type LockClient, newCounters, type Subject } from './subject.js'

export interface ContentionSettings {
  /** Each with a client (connections) of its own. */
  workers: number
  /** How long each acquisition is held before release. */
  holdMs: number
  /** Acquisitions are counted while this window is open; the workers then finish the cycle they are in. */
  durationMs: number
}

/** One window of one subject. */
export interface ContentionRound {
  /** Acquisitions made while the window was open: what throughput and fairness count. */
  acquisitions: number
  /**
   * Every acquisition the counted round trips paid for: those of the window, plus each worker's last one,
   * asked for inside the window but granted after it closed (its requests are counted as they happen).
   */
  completed: number
  perWorker: number[]
  /** Milliseconds from a holder calling release to the next holder's acquire resolving. */
  handoffs: number[]
  /** The hand-offs whose next holder's client timed its attempts, split in three (see HandoffSplit). */
  handoffSplits: HandoffSplit[]
  /** Acquisitions that resolved before the previous holder had even called release: exclusion broken. */
  overlaps: number
  /** Hand-offs where the worker that released took the lock straight back. */
  retakes: number
  /** The longest a single `lock()` call waited, among the calls made while the window was open. */
  longestWaitMs: number
  counters: Counters
}

/** One acquisition, on one clock shared by every worker of the round. */
export interface Hold {
  worker: number
  /** When the worker called `lock()`. */
  askedAt: number
  acquiredAt: number
  /** When the attempt that was granted left the worker, if its client times attempts. */
  attemptSentAt?: number
  releasingAt: number
  /** When its release resolved. */
  releasedAt: number
}

/**
 * Where one hand-off's time went, in ms: the releasing holder's release round trip; from that release
 * resolving to the next holder's granting attempt leaving (negative when the attempt left first, woken
 * by an announcement that overtook the release's reply, or already in flight); that attempt's round trip
 * up to `lock()` resolving.
 */
export interface HandoffSplit {
  release: number
  toAttempt: number
  attempt: number
}

/** Beyond the window, how long the workers may take to finish before the round counts as hung. */
export const FINISH_TIMEOUT_MS = 60_000

/**
 * `workers` clients loop on one key: acquire, hold `holdMs`, release, straight back to acquire, as long as
 * the window is open. Timestamps come from one monotonic clock in one process, so hand-offs between
 * workers are measured exactly.
 */
export async function runContention(subject: Subject, key: string, settings: ContentionSettings): Promise<ContentionRound> {
  const counters = newCounters()
  const clients: LockClient[] = []
  try {
    for (let i = 0; i < settings.workers; i++) clients.push(await subject.connect(counters, { timeAttempts: true }))
    // Connections, tables and scripts are ready before the window opens; each worker warms on a key of its own.
    await Promise.all(clients.map((client, worker) => warmUp(client, counterKey(`${key}:warm:${worker}`), 2)))
    Object.assign(counters, newCounters())

    const deadline = performance.now() + settings.durationMs
    const now = () => performance.now()
    const work = (client: LockClient, worker: number) => runHolds(client, key, worker, settings.holdMs, deadline, now)
    const holds = await withTimeout(
      Promise.all(clients.map(work)).then((each) => each.flat()),
      settings.durationMs + FINISH_TIMEOUT_MS,
      `${subject.id}: the workers did not finish within ${FINISH_TIMEOUT_MS} ms of the window closing`,
    )
    return summarise(holds, deadline, settings.workers, counters, subject.holders ?? 1)
  } finally {
    await Promise.allSettled(clients.map((client) => client.close()))
  }
}

/**
 * One worker's loop: acquire, hold `holdMs`, release, straight back, until `deadline` on the `now` clock;
 * every acquisition timed on that clock.
 */
export async function runHolds(
  client: LockClient,
  key: string,
  worker: number,
  holdMs: number,
  deadline: number,
  now: () => number,
): Promise<Hold[]> {
  const holds: Hold[] = []
  while (now() < deadline) {
    const askedAt = now()
    const release = await client.lock(key)
    const acquiredAt = now()
    // The client's attempt times are on performance.now(); `now` may be another monotonic clock.
    const sentAt = client.lastAttemptSentAt?.()
    const attemptSentAt = sentAt === undefined ? undefined : sentAt + (acquiredAt - performance.now())
    await sleep(holdMs)
    const releasingAt = now()
    await release()
    const releasedAt = now()
    holds.push({
      worker,
      askedAt,
      acquiredAt,
      releasingAt,
      releasedAt,
      ...(attemptSentAt === undefined ? {} : { attemptSentAt }),
    })
  }
  return holds
}

/**
 * `deadline` on the holds' clock: acquisitions after it are not counted, waits that began before it are.
 * `holders`: how many may hold at once (a semaphore's limit; 1 for a mutex). An acquisition that finds that
 * many others still holding is an overlap; one that takes the last free place counts a hand-off from the
 * latest release before it.
 */
export function summarise(holds: Hold[], deadline: number, workers: number, counters: Counters, holders = 1): ContentionRound {
  const longestWaitMs = holds
    .filter((hold) => hold.askedAt < deadline)
    .reduce((longest, hold) => Math.max(longest, hold.acquiredAt - hold.askedAt), 0)
  const counted = holds.filter((hold) => hold.acquiredAt < deadline).sort((a, b) => a.acquiredAt - b.acquiredAt)
  const perWorker = Array.from({ length: workers }, () => 0)
  const handoffs: number[] = []
  const handoffSplits: HandoffSplit[] = []
  let overlaps = 0
  let retakes = 0
  let active: Hold[] = []
  let lastReleased: Hold | undefined
  counted.forEach((hold, index) => {
    perWorker[hold.worker]! += 1
    const still: Hold[] = []
    for (const other of active) {
      if (other.releasingAt > hold.acquiredAt) still.push(other)
      else if (lastReleased === undefined || other.releasingAt > lastReleased.releasingAt) lastReleased = other
    }
    active = still
    const previous = counted[index - 1]
    if (previous !== undefined && previous.worker === hold.worker) retakes += 1
    if (active.length >= holders) overlaps += 1
    else if (active.length === holders - 1 && lastReleased !== undefined) {
      handoffs.push(hold.acquiredAt - lastReleased.releasingAt)
      if (hold.attemptSentAt !== undefined) {
        handoffSplits.push({
          release: lastReleased.releasedAt - lastReleased.releasingAt,
          toAttempt: hold.attemptSentAt - lastReleased.releasedAt,
          attempt: hold.acquiredAt - hold.attemptSentAt,
        })
      }
    }
    active.push(hold)
  })
  return {
    acquisitions: counted.length,
    completed: holds.length,
    perWorker,
    handoffs,
    handoffSplits,
    overlaps,
    retakes,
    longestWaitMs,
    counters,
  }
}

export function counterKey(prefix: string): () => string {
  let n = 0
  return () => `${prefix}:${n++}`
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
