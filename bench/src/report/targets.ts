import type { BenchResult, ContentionResult, CycleResult, PairedCycleResult } from '../run.js'
import type { StoreId } from '../subject.js'
import { ratio, whole } from './format.js'

export interface Verdict {
  met: boolean
  text: string
}

/** Issue 12: how far our cycle p50 may be above the raw floor's, per store (memory has no floor target). */
const FLOOR_BUDGETS: Partial<Record<StoreId, number>> = {
  redis: 1.08,
  postgres: 1.05,
  mysql: 1.1,
  upstash: 1.05,
  dynamodb: 1.05,
}

/** Issue 12: callers sharing one client get at least this share of the raw client's cycles/s, at every concurrency. */
const SCALING_BUDGET = 0.9

/** Issue 12: the most CPU `Lock` itself may spend per acquire + release, in ns. */
const LOCK_CPU_BUDGET_NS = 2000

/**
 * The issue's targets, checked on this run's numbers. The uncontended targets use the paired ratios (ours
 * against the floor or the original, cycle for cycle in alternating blocks: the issue's own measure), and
 * fall back to the ratio of p50 latencies where a store has none; the contention target compares each
 * configuration of ours against every other subject on the same store.
 */
export function evaluateTargets(result: BenchResult): Verdict[] {
  const verdicts: Verdict[] = []
  const measured = (rows: CycleResult[]) => rows.filter((row) => row.error === undefined && row.cycles > 0)
  const cycles = measured(result.cycles)
  const find = (store: StoreId, role: string) => cycles.find((row) => row.subject.store === store && row.subject.role === role)
  const pairedWith = (store: StoreId, against: string) => pairedRatio(result.pairedCycles, store, against)

  for (const [store, budget] of Object.entries(FLOOR_BUDGETS) as [StoreId, number][]) {
    const ours = find(store, 'ours')
    const floor = find(store, 'floor')
    if (ours === undefined || floor === undefined) continue
    const paired = pairedWith(store, 'floor')
    const r = paired?.ratio ?? ours.latency.p50 / floor.latency.p50
    verdicts.push({
      met: r <= budget,
      text:
        paired === undefined
          ? `${store}: cycle p50 ${ratio(r)} the raw floor (target ≤ ${ratio(budget)})`
          : `${store}: cycle time ${ratio(r)} the raw floor's, paired (median of ${paired.pairs} block pairs; p50 ratio ${ratio(ours.latency.p50 / floor.latency.p50)}) (target ≤ ${ratio(budget)})`,
    })
  }

  for (const v0 of result.cycles.filter((row) => row.subject.id.endsWith('/verrou-v0'))) {
    const ours = find(v0.subject.store, 'ours')
    if (ours === undefined) continue
    if (v0.error !== undefined) {
      verdicts.push({ met: true, text: `${v0.subject.store}: the original Verrou failed the cycle test (${v0.error})` })
      continue
    }
    const paired = pairedWith(v0.subject.store, 'verrou-v0')
    const r = paired?.ratio ?? ours.latency.p50 / v0.latency.p50
    verdicts.push({
      met: r < 1,
      text:
        paired === undefined
          ? `${v0.subject.store}: cycle p50 ${ratio(r)} the original Verrou's (target < 1.00×)`
          : `${v0.subject.store}: cycle time ${ratio(r)} the original Verrou's, paired (median of ${paired.pairs} block pairs; p50 ratio ${ratio(ours.latency.p50 / v0.latency.p50)}) (target < 1.00×)`,
    })
  }

  const contended = result.contention.filter((row) => row.windows > 0 && row.error === undefined)
  for (const ours of contended.filter((row) => row.subject.role === 'ours')) {
    // Semaphores let three hold at once: they are compared with each other below, not with the mutexes.
    const others = result.contention.filter(
      (row) => row.subject.store === ours.subject.store && row.subject.role !== 'ours' && row.subject.role !== 'semaphore',
    )
    const beaten = others.filter(
      (other) => other.error === undefined && other.acquisitionsPerSecond >= ours.acquisitionsPerSecond,
    )
    const failed = others.filter((other) => other.error !== undefined).map((other) => other.subject.label)
    const name = `${ours.subject.store}, ${ours.subject.label}`
    verdicts.push({
      met: beaten.length === 0,
      text:
        beaten.length === 0
          ? `${name}: ${whole(ours.acquisitionsPerSecond)} acquisitions/s, more than every other subject${failed.length > 0 ? ` (${failed.join(', ')} failed)` : ''}`
          : `${name}: ${whole(ours.acquisitionsPerSecond)} acquisitions/s, fewer than ${describeRates(beaten)}`,
    })
    verdicts.push({
      met: ours.fewest > 0,
      text: `${name}: fewest acquisitions by one worker in one window: ${ours.fewest} (target > 0)`,
    })
    if (ours.overlaps > 0) {
      verdicts.push({ met: false, text: `${name}: ${ours.overlaps} acquisitions overlapped the previous holder` })
    }
  }
  verdicts.push(...semaphoreVerdicts(contended))
  verdicts.push(...scalingVerdicts(result))
  if (result.lockCpu !== undefined) {
    const ns = result.lockCpu.overheadNs
    verdicts.push({
      met: ns <= LOCK_CPU_BUDGET_NS,
      text: `Lock's own CPU per cycle (over a store that answers at once): ${(ns / 1000).toFixed(2)} µs (target ≤ ${LOCK_CPU_BUDGET_NS / 1000} µs)`,
    })
  }
  verdicts.push(...fairHandOverVerdicts(result))
  return verdicts
}

/** The paired ratio of ours against `against` (a subject id within the store), if it was measured. */
export function pairedRatio(rows: PairedCycleResult[], store: StoreId, against: string): PairedCycleResult | undefined {
  return rows.find(
    (row) =>
      row.store === store && row.against.id === `${store}/${against}` && row.error === undefined && Number.isFinite(row.ratio),
  )
}

/** Ours (shipped defaults) against the raw client, both with callers sharing one client, per store and concurrency. */
function scalingVerdicts(result: BenchResult): Verdict[] {
  const verdicts: Verdict[] = []
  for (const ours of result.scaling.filter((row) => row.subject.role === 'ours')) {
    const floor = result.scaling.find(
      (row) => row.subject.store === ours.subject.store && row.subject.role === 'floor' && row.concurrency === ours.concurrency,
    )
    const where = `${ours.subject.store}, ${ours.concurrency} caller${ours.concurrency === 1 ? '' : 's'} sharing one client`
    if (ours.error !== undefined) {
      verdicts.push({ met: false, text: `${where}: ours failed (${ours.error})` })
      continue
    }
    if (floor === undefined || floor.error !== undefined || floor.cyclesPerSecond <= 0) continue
    const r = ours.ratioToFloor ?? ours.cyclesPerSecond / floor.cyclesPerSecond
    const how =
      ours.ratioToFloor === undefined
        ? ''
        : ` (median of the rounds' ratios; ${ratio(ours.cyclesPerSecond / floor.cyclesPerSecond)} over all rounds)`
    verdicts.push({
      met: r >= SCALING_BUDGET,
      text: `${where}: ${whole(ours.cyclesPerSecond)} cycles/s, ${ratio(r)} the raw client's${how} (target ≥ ${ratio(SCALING_BUDGET)})`,
    })
  }
  return verdicts
}

/**
 * Fair hand-over across processes (issue 13): on stores that announce a release to the next waiter, the
 * fewest acquisitions of one worker is at least half the mean, no single wait passes 100 ms, an acquisition
 * costs at most 3 round trips and throughput is at least 0.95x the raw client's; on the stores whose head
 * of the queue polls, nobody starves, no wait passes 1 s and throughput is at least 0.8x. Memory lives in one
 * process, so its in-process row is held to the first set. Upstash announces too now (over event streams),
 * but the issue lists it with the polling stores, so it is held to their targets.
 */
const ANNOUNCING: StoreId[] = ['memory', 'redis', 'postgres']

function fairHandOverVerdicts(result: BenchResult): Verdict[] {
  const verdicts: Verdict[] = []
  const rows = [...result.processContention, ...result.contention.filter((row) => row.subject.store === 'memory')].filter(
    (row) => row.subject.id.endsWith('/verrou-250ms') && row.error === undefined && row.windows > 0,
  )
  for (const ours of rows) {
    const store = ours.subject.store
    const announcing = ANNOUNCING.includes(store)
    const where = store === 'memory' ? 'memory (one process)' : `${store} across processes`
    const floor = (store === 'memory' ? result.contention : result.processContention).find(
      (row) => row.subject.store === store && row.subject.role === 'floor' && row.error === undefined,
    )
    if (announcing) {
      verdicts.push({
        met: ours.fewest >= ours.meanPerWorker / 2,
        text: `${where}: fewest acquisitions of one worker ${ours.fewest}, mean ${whole(ours.meanPerWorker)} (target ≥ half the mean)`,
      })
    } else {
      verdicts.push({ met: ours.fewest > 0, text: `${where}: fewest acquisitions of one worker ${ours.fewest} (target > 0)` })
    }
    const waitBound = announcing ? 100 : 1000
    verdicts.push({
      met: ours.longestWaitMs <= waitBound,
      text: `${where}: longest single wait ${whole(ours.longestWaitMs)} ms (target ≤ ${waitBound} ms)`,
    })
    if (announcing && store !== 'memory') {
      verdicts.push({
        met: ours.roundTripsPerAcquisition <= 3,
        text: `${where}: ${ours.roundTripsPerAcquisition.toFixed(2)} round trips per acquisition (target ≤ 3)`,
      })
    }
    if (floor !== undefined && floor.acquisitionsPerSecond > 0) {
      const r = ours.acquisitionsPerSecond / floor.acquisitionsPerSecond
      const budget = announcing ? 0.95 : 0.8
      verdicts.push({
        met: r >= budget,
        text: `${where}: throughput ${ratio(r)} the raw client's (target ≥ ${ratio(budget)})`,
      })
    }
  }
  return verdicts
}

function describeRates(rows: ContentionResult[]): string {
  return rows.map((row) => `${row.subject.label} (${whole(row.acquisitionsPerSecond)})`).join(', ')
}

/**
 * Issue 15: our semaphore under contention starves nobody (every worker got permits in every window), and on
 * Redis it is set beside redis-semaphore's Semaphore with the same limit.
 */
function semaphoreVerdicts(contended: ContentionResult[]): Verdict[] {
  const verdicts: Verdict[] = []
  for (const ours of contended.filter((row) => row.subject.id.endsWith('/verrou-semaphore'))) {
    const peer = contended.find(
      (row) => row.subject.store === ours.subject.store && row.subject.role === 'semaphore' && row !== ours,
    )
    const versus =
      peer === undefined
        ? ''
        : `; ${peer.subject.label}: ${whole(peer.acquisitionsPerSecond)}/s, fewest ${peer.fewest}, longest wait ${whole(peer.longestWaitMs)} ms`
    verdicts.push({
      met: ours.fewest > 0 && ours.overlaps === 0,
      text: `${ours.subject.store}, ${ours.subject.label}: ${whole(ours.acquisitionsPerSecond)} acquisitions/s, fewest acquisitions by one worker ${ours.fewest}, longest wait ${whole(ours.longestWaitMs)} ms, never more than the limit at once (target: nobody starves)${versus}`,
    })
  }
  return verdicts
}
