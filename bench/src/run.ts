import { randomBytes } from 'node:crypto'
import type { StartedBackend } from './backends/backend.js'
import { BACKENDS } from './backends/index.js'
import type { Scenario } from './cli.js'
import { type ContentionRound, type HandoffSplit, runContention } from './contention.js'
import { type CycleTally, newCycleTally, runCycles, warmUp } from './cycles.js'
import { type LockCpuResult, measureLockCpu } from './lock_cpu.js'
import { cyclesPerBlock, runPairedBlocks } from './paired_cycles.js'
import type { Plan } from './plan.js'
import { runProcessContention } from './process_contention.js'
import { runScaling, warmUpCallers } from './scaling.js'
import { type Distribution, distribution, median, Samples } from './stats.js'
import { type Counters, type LockClient, newCounters, type Role, type StoreId, type Subject } from './subject.js'

export interface SubjectInfo {
  id: string
  store: StoreId
  label: string
  role: Role
}

export interface StoreReport {
  store: StoreId
  label: string
  /** The server measured, when it started. */
  server?: string
}

export interface CycleResult {
  subject: SubjectInfo
  cycles: number
  cyclesPerSecond: number
  /** Milliseconds per acquire + release. */
  latency: Distribution
  roundTripsPerCycle: number
  error?: string
}

/** Ours against another subject of the same store, in alternating blocks of uncontended cycles. */
export interface PairedCycleResult {
  store: StoreId
  ours: SubjectInfo
  against: SubjectInfo
  /** Median over block pairs of (our block time / theirs): 1.10 is 10% slower. */
  ratio: number
  pairs: number
  cyclesPerBlock: number
  error?: string
}

export interface ContentionResult {
  subject: SubjectInfo
  windows: number
  acquisitionsPerSecond: number
  /** Fewest and most acquisitions by one worker in one window. */
  fewest: number
  /** Acquisitions of one worker in one window, on average. */
  meanPerWorker: number
  most: number
  /** Milliseconds from a release call to the next successful acquire. */
  handoff: Distribution
  /** The median of each part of a hand-off (see HandoffSplit), when the subject's client times its attempts. */
  handoffSplit?: HandoffSplit
  overlaps: number
  /** Share of hand-offs (0 to 1) in which the releasing worker took the lock straight back. */
  retakeShare: number
  gaveUp: number
  roundTripsPerAcquisition: number
  /** The longest a single acquisition waited, over every window. */
  longestWaitMs: number
  error?: string
}

/** One subject at one concurrency of the scaling scenario, summed over rounds. */
export interface ScalingResult {
  subject: SubjectInfo
  /** Callers sharing one client. */
  concurrency: number
  cycles: number
  cyclesPerSecond: number
  /**
   * Not on the floor's rows: the median over rounds of this subject's cycles/s over the floor's in the same
   * round, at the same concurrency (subjects take turns within a round, seconds apart). What the targets use.
   */
  ratioToFloor?: number
  roundTripsPerCycle: number
  error?: string
}

export interface BenchResult {
  runId: string
  plan: Plan
  stores: StoreReport[]
  cycles: CycleResult[]
  /** Ours against the floor and the original, cycle for cycle: the ratios the uncontended targets use. */
  pairedCycles: PairedCycleResult[]
  contention: ContentionResult[]
  /** The same scenario with every worker in an OS process of its own (stores that live outside the process). */
  processContention: ContentionResult[]
  /** Callers on distinct keys sharing one client or pool, at each of the plan's concurrencies. */
  scaling: ScalingResult[]
  /** `Lock` over a store that answers at once; absent if that measurement failed (see `errors`). */
  lockCpu?: LockCpuResult
  /**
   * What went wrong with the run itself: a store that would not start, one of our subjects or a floor that
   * threw. A peer library that fails is a result (its row says how), not an error of the run.
   */
  errors: string[]
  durationMs: number
}

export interface RunOptions {
  plan: Plan
  stores: readonly StoreId[]
  /** The measurements to make; all of them when absent. */
  scenarios?: readonly Scenario[]
  log?: (line: string) => void
}

/**
 * Starts the backends, measures uncontended cycles, scaling, then contention, stops the backends. Subjects take
 * turns in short slices, the order rotating and reversing every round, so that drifts in machine load
 * land on every subject alike and ratios within one run stay fair.
 */
async function measureBackends({ plan, stores, scenarios, log = () => {} }: RunOptions): Promise<BenchResult> {
  const runs = (scenario: Scenario) => scenarios === undefined || scenarios.includes(scenario)
  const runId = randomBytes(4).toString('hex')
  const errors: string[] = []
  const reports: StoreReport[] = []
  const running: StartedBackend[] = []

  const outcomes = await Promise.allSettled(stores.map((store) => BACKENDS[store].start({ runId })))
  outcomes.forEach((outcome, index) => {
    const backend = BACKENDS[stores[index]!]
    const report: StoreReport = { store: backend.store, label: backend.label }
    if (outcome.status === 'fulfilled') {
      running.push(outcome.value)
      report.server = outcome.value.server
    } else {
      errors.push(`${backend.label} did not start: ${describe(outcome.reason)}`)
      log(`${backend.label}: did not start: ${describe(outcome.reason)}`)
    }
    reports.push(report)
  })

  try {
    const subjects = running.flatMap((backend) => backend.subjects)
    const keyOf = (subject: Subject, what: string) => `vbench:${runId}:${subject.id}:${what}`
    const { rows: cycles, paired: pairedCycles } = await measureCycles(
      subjects.filter((subject) => runs('cycles') && subject.cycles),
      plan,
      keyOf,
      errors,
      log,
    )
    const scaling = await measureScaling(
      subjects.filter((subject) => runs('scaling') && SCALING.includes(subject.id.slice(subject.store.length + 1))),
      plan,
      keyOf,
      errors,
      log,
    )
    const contention = await measureContention(
      subjects.filter((subject) => runs('contention') && subject.contention),
      plan,
      (subject, key) => runContention(subject, key, plan.contention),
      (subject, round) => keyOf(subject, `contended:${round}`),
      errors,
      log,
    )
    // Across processes: ours with the shipped defaults against the raw client, on every store that lives
    // outside the process. Each worker process rebuilds the subject from the backend's shared settings.
    const acrossProcesses = running.flatMap((backend) =>
      backend.shared === undefined || !runs('processes')
        ? []
        : backend.subjects
            .filter((subject) => ACROSS_PROCESSES.includes(subject.id.slice(subject.store.length + 1)))
            .map((subject) => ({ subject, store: subject.store, runId, shared: backend.shared ?? {} })),
    )
    const processContention = await measureContention(
      acrossProcesses.map((entry) => entry.subject),
      plan,
      (subject, key) => {
        const entry = acrossProcesses.find((each) => each.subject === subject)
        if (entry === undefined) throw new Error(`${subject.id} has no backend to rebuild it from`)
        return runProcessContention(entry, key, plan.contention)
      },
      (subject, round) => keyOf(subject, `processes:${round}`),
      errors,
      log,
      'across processes',
    )
    return { runId, plan, stores: reports, cycles, pairedCycles, scaling, contention, processContention, errors, durationMs: 0 }
  } finally {
    for (const backend of running) {
      await backend.stop().catch((error: unknown) => errors.push(`clean-up failed: ${describe(error)}`))
    }
  }
}

/**
 * Lock's own CPU first, before any server or worker process is started: measured at the end, it met the
 * tail of the contention runs (8 worker processes exiting, DynamoDB Local's JVM stopping) and read 2.1-2.3 µs
 * where the same code alone reads 1.2. Then everything `measureBackends` does.
 */
export async function runBench(options: RunOptions): Promise<BenchResult> {
  const started = performance.now()
  let lockCpu: BenchResult['lockCpu']
  const cpuErrors: string[] = []
  if (options.scenarios === undefined || options.scenarios.includes('cpu')) {
    try {
      options.log?.('lock CPU: Lock over an instant store against the bare store calls')
      lockCpu = await measureLockCpu(options.plan.lockCpu)
    } catch (error) {
      cpuErrors.push(`lock CPU: ${describe(error)}`)
    }
  }
  const result = await measureBackends(options)
  if (lockCpu !== undefined) result.lockCpu = lockCpu
  result.errors.push(...cpuErrors)
  result.durationMs = performance.now() - started
  return result
}

type KeyOf = (subject: Subject, what: string) => string

/** The subjects (by id within their store) ours is paired against in the cycle test. */
const PAIRED_AGAINST = ['floor', 'verrou-v0']

/** The subjects (by id within their store) that the scenario across processes measures. */
const ACROSS_PROCESSES = ['verrou-250ms', 'floor']

async function measureCycles(
  subjects: Subject[],
  plan: Plan,
  keyOf: KeyOf,
  errors: string[],
  log: (line: string) => void,
): Promise<{ rows: CycleResult[]; paired: PairedCycleResult[] }> {
  interface Entry {
    subject: Subject
    counters: Counters
    client?: LockClient
    tally: CycleTally
    nextKey: () => string
    /** Requests of the timed rounds (the paired blocks after them are not in the tally). */
    roundTrips?: number
    error?: string
  }
  const entries: Entry[] = subjects.map((subject) => {
    let n = 0
    const prefix = keyOf(subject, 'cycle')
    return { subject, counters: newCounters(), tally: newCycleTally(), nextKey: () => `${prefix}:${n++}` }
  })
  const fail = (entry: Entry, error: unknown) => {
    entry.error = describe(error)
    if (entry.subject.role !== 'peer') errors.push(`${entry.subject.id} (cycles): ${entry.error}`)
    log(`${entry.subject.id}: cycles failed: ${entry.error}`)
  }
  const paired: PairedCycleResult[] = []
  try {
    for (const entry of entries) {
      try {
        entry.client = await entry.subject.connect(entry.counters)
        await warmUp(entry.client, entry.nextKey, plan.cycles.warmupCycles)
        Object.assign(entry.counters, newCounters())
      } catch (error) {
        fail(entry, error)
      }
    }
    for (let round = 0; round < plan.cycles.rounds; round++) {
      log(`cycles: round ${round + 1} of ${plan.cycles.rounds}`)
      for (const entry of turnOrder(entries, round)) {
        if (entry.client === undefined || entry.error !== undefined) continue
        try {
          await runCycles(entry.client, entry.nextKey, plan.cycles.sliceMs, entry.tally)
        } catch (error) {
          fail(entry, error)
        }
      }
    }
    for (const entry of entries) entry.roundTrips = entry.counters.roundTrips
    paired.push(...(await measurePairs(entries, plan, errors, log)))
  } finally {
    await Promise.allSettled(entries.map((entry) => entry.client?.close()))
  }
  const rows = entries.map(({ subject, tally, counters, roundTrips, error }) => {
    const count = tally.latencies.length
    return {
      subject: info(subject),
      cycles: count,
      cyclesPerSecond: tally.elapsedMs > 0 ? (count * 1000) / tally.elapsedMs : 0,
      latency: distribution(tally.latencies),
      roundTripsPerCycle: count > 0 ? (roundTrips ?? counters.roundTrips) / count : Number.NaN,
      ...(error === undefined ? {} : { error }),
    }
  })
  return { rows, paired }
}

/**
 * Exported for its tests. After the rounds, per store: ours (shipped defaults) against the floor and against the original, in
 * alternating blocks of the same number of cycles (see runPairedBlocks), on the clients the rounds used.
 * A block lasts about `pairBlockMs` at the other side's p50.
 */
export async function measurePairs(
  entries: { subject: Subject; client?: LockClient; tally: CycleTally; nextKey: () => string; error?: string }[],
  plan: Plan,
  errors: string[],
  log: (line: string) => void,
): Promise<PairedCycleResult[]> {
  const results: PairedCycleResult[] = []
  const usable = (entry: (typeof entries)[number] | undefined) =>
    entry !== undefined && entry.client !== undefined && entry.error === undefined && entry.tally.latencies.length > 0
  for (const ours of entries.filter((entry) => entry.subject.id === `${entry.subject.store}/verrou-250ms`)) {
    if (!usable(ours)) continue
    for (const suffix of PAIRED_AGAINST) {
      const against = entries.find((entry) => entry.subject.id === `${ours.subject.store}/${suffix}`)
      if (against === undefined || !usable(against)) continue
      const cycles = cyclesPerBlock(plan.cycles.pairBlockMs, distribution(against.tally.latencies).p50)
      log(`cycles: ${ours.subject.id} against ${against.subject.id}, ${plan.cycles.pairs} block pairs of ${cycles}`)
      const base = { store: ours.subject.store, ours: info(ours.subject), against: info(against.subject), cyclesPerBlock: cycles }
      try {
        const paired = await runPairedBlocks(
          { client: ours.client as LockClient, nextKey: ours.nextKey },
          { client: against.client as LockClient, nextKey: against.nextKey },
          plan.cycles.pairs,
          cycles,
        )
        results.push({ ...base, ratio: paired.ratio, pairs: paired.pairs })
      } catch (error) {
        const reason = describe(error)
        results.push({ ...base, ratio: Number.NaN, pairs: 0, error: reason })
        // Ours or the floor failing is an error of the run (the target then falls back to the p50 ratio).
        if (against.subject.role !== 'peer')
          errors.push(`${ours.subject.id} against ${against.subject.id} (paired cycles): ${reason}`)
        log(`${ours.subject.id} against ${against.subject.id}: paired cycles failed: ${reason}`)
      }
    }
  }
  return results
}

/** The subjects (by id within their store) that the scaling scenario measures: ours as shipped, the floor, the original. */
const SCALING = ['verrou-250ms', 'floor', 'verrou-v0']

/**
 * For each concurrency, each subject in turn gets a fresh client (one pool of `poolSize` on the SQL stores),
 * warms it up with that many callers, then lets them loop for one slice. A client per slice keeps at most one
 * pool open at a time on servers that other people share; the order rotates every round as elsewhere.
 */
async function measureScaling(
  subjects: Subject[],
  plan: Plan,
  keyOf: KeyOf,
  errors: string[],
  log: (line: string) => void,
): Promise<ScalingResult[]> {
  const { concurrencies, rounds, sliceMs, warmupCyclesPerCaller, poolSize } = plan.scaling
  const entries = concurrencies.flatMap((concurrency) =>
    subjects.map((subject) => {
      let n = 0
      const prefix = keyOf(subject, `scaling:${concurrency}`)
      return {
        subject,
        concurrency,
        cycles: 0,
        elapsedMs: 0,
        roundTrips: 0,
        /** Cycles/s in each round (NaN where the subject did not run). */
        rates: Array.from({ length: rounds }, () => Number.NaN),
        nextKey: () => `${prefix}:${n++}`,
        error: undefined as string | undefined,
      }
    }),
  )
  for (let round = 0; round < rounds; round++) {
    for (const concurrency of concurrencies) {
      log(`scaling: round ${round + 1} of ${rounds}, ${concurrency} callers`)
      for (const entry of turnOrder(
        entries.filter((each) => each.concurrency === concurrency),
        round,
      )) {
        if (entry.error !== undefined) continue
        const counters = newCounters()
        let client: LockClient | undefined
        try {
          client = await entry.subject.connect(counters, { poolSize })
          await warmUpCallers(client, entry.nextKey, concurrency, warmupCyclesPerCaller)
          counters.roundTrips = 0
          const slice = await runScaling(client, entry.nextKey, concurrency, sliceMs)
          entry.cycles += slice.cycles
          entry.elapsedMs += slice.elapsedMs
          if (slice.elapsedMs > 0) entry.rates[round] = (slice.cycles * 1000) / slice.elapsedMs
          entry.roundTrips += counters.roundTrips
          await client.close()
        } catch (error) {
          await client?.close().catch(() => {})
          entry.error = describe(error)
          if (entry.subject.role !== 'peer') errors.push(`${entry.subject.id} (scaling, ${concurrency} callers): ${entry.error}`)
          log(`${entry.subject.id}: scaling with ${concurrency} callers failed: ${entry.error}`)
        }
      }
    }
  }
  return entries.map(({ subject, concurrency, cycles, elapsedMs, roundTrips, rates, error }) => {
    const floor = entries.find(
      (each) => each.subject.store === subject.store && each.subject.role === 'floor' && each.concurrency === concurrency,
    )
    const ratios =
      floor === undefined || floor.subject === subject
        ? []
        : rates.map((rate, round) => rate / floor.rates[round]!).filter((ratio) => Number.isFinite(ratio))
    return {
      subject: info(subject),
      concurrency,
      cycles,
      cyclesPerSecond: elapsedMs > 0 ? (cycles * 1000) / elapsedMs : 0,
      ...(ratios.length === 0 ? {} : { ratioToFloor: median(ratios) }),
      roundTripsPerCycle: cycles > 0 ? roundTrips / cycles : Number.NaN,
      ...(error === undefined ? {} : { error }),
    }
  })
}

async function measureContention(
  subjects: Subject[],
  plan: Plan,
  runRound: (subject: Subject, key: string) => Promise<ContentionRound>,
  keyOfRound: (subject: Subject, round: number) => string,
  errors: string[],
  log: (line: string) => void,
  scenario = 'contention',
): Promise<ContentionResult[]> {
  const entries = subjects.map((subject) => ({
    subject,
    rounds: [] as ContentionRound[],
    error: undefined as string | undefined,
  }))
  for (let round = 0; round < plan.contention.rounds; round++) {
    for (const entry of turnOrder(entries, round)) {
      if (entry.error !== undefined) continue
      try {
        const result = await runRound(entry.subject, keyOfRound(entry.subject, round))
        entry.rounds.push(result)
        const rate = (result.acquisitions * 1000) / plan.contention.durationMs
        log(`${scenario} ${round + 1}/${plan.contention.rounds}: ${entry.subject.id}: ${rate.toFixed(0)} acquisitions/s`)
      } catch (error) {
        entry.error = describe(error)
        if (entry.subject.role !== 'peer') errors.push(`${entry.subject.id} (${scenario}): ${entry.error}`)
        log(`${entry.subject.id}: ${scenario} failed: ${entry.error}`)
      }
    }
  }
  return entries.map(({ subject, rounds, error }) => {
    const acquisitions = sum(rounds.map((round) => round.acquisitions))
    const completed = sum(rounds.map((round) => round.completed))
    const perWorker = rounds.flatMap((round) => round.perWorker)
    const handoffs = new Samples()
    for (const round of rounds) for (const gap of round.handoffs) handoffs.push(gap)
    const seconds = (rounds.length * plan.contention.durationMs) / 1000
    const splits = rounds.flatMap((round) => round.handoffSplits)
    return {
      subject: info(subject),
      windows: rounds.length,
      acquisitionsPerSecond: seconds > 0 ? acquisitions / seconds : 0,
      fewest: perWorker.length > 0 ? Math.min(...perWorker) : 0,
      meanPerWorker: perWorker.length > 0 ? acquisitions / perWorker.length : 0,
      most: perWorker.length > 0 ? Math.max(...perWorker) : 0,
      handoff: distribution(handoffs),
      ...(splits.length === 0 ? {} : { handoffSplit: medianSplit(splits) }),
      overlaps: sum(rounds.map((round) => round.overlaps)),
      retakeShare: acquisitions > rounds.length ? sum(rounds.map((round) => round.retakes)) / (acquisitions - rounds.length) : 0,
      gaveUp: sum(rounds.map((round) => round.counters.gaveUp)),
      // Per acquisition paid for: dividing by the window's acquisitions alone would charge each worker's
      // last wait, granted after the window closed, to the others.
      roundTripsPerAcquisition: completed > 0 ? sum(rounds.map((round) => round.counters.roundTrips)) / completed : Number.NaN,
      longestWaitMs: Math.max(0, ...rounds.map((round) => round.longestWaitMs)),
      ...(error === undefined ? {} : { error }),
    }
  })
}

function medianSplit(splits: HandoffSplit[]): HandoffSplit {
  return {
    release: median(splits.map((split) => split.release)),
    toAttempt: median(splits.map((split) => split.toAttempt)),
    attempt: median(splits.map((split) => split.attempt)),
  }
}

/** Round r starts r places further along, and every other round runs backwards. */
function turnOrder<T>(items: T[], round: number): T[] {
  if (items.length === 0) return items
  const shift = round % items.length
  const rotated = [...items.slice(shift), ...items.slice(0, shift)]
  return round % 2 === 1 ? rotated.reverse() : rotated
}

const info = ({ id, store, label, role }: Subject): SubjectInfo => ({ id, store, label, role })
const sum = (values: number[]) => values.reduce((total, value) => total + value, 0)

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}
