import type { BenchResult, ContentionResult, CycleResult } from '../run.js'
import type { StoreId } from '../subject.js'
import { ratio, whole } from './format.js'

export interface Verdict {
  met: boolean
  text: string
}

/** Stores on which our cycle latency must stay within `FLOOR_BUDGET` of the raw floor. */
const FLOOR_TARGET_STORES: StoreId[] = ['redis', 'postgres']
const FLOOR_BUDGET = 1.15

/**
 * The issue's targets, checked on this run's numbers. Latency targets compare p50 cycle latencies; the
 * contention target compares each configuration of ours against every other subject on the same store.
 */
export function evaluateTargets(result: BenchResult): Verdict[] {
  const verdicts: Verdict[] = []
  const measured = (rows: CycleResult[]) => rows.filter((row) => row.error === undefined && row.cycles > 0)
  const cycles = measured(result.cycles)
  const find = (store: StoreId, role: string) => cycles.find((row) => row.subject.store === store && row.subject.role === role)

  for (const store of FLOOR_TARGET_STORES) {
    const ours = find(store, 'ours')
    const floor = find(store, 'floor')
    if (ours === undefined || floor === undefined) continue
    const r = ours.latency.p50 / floor.latency.p50
    verdicts.push({
      met: r <= FLOOR_BUDGET,
      text: `${store}: cycle p50 ${ratio(r)} the raw floor (target ≤ ${ratio(FLOOR_BUDGET)})`,
    })
  }

  for (const v0 of result.cycles.filter((row) => row.subject.id.endsWith('/verrou-v0'))) {
    const ours = find(v0.subject.store, 'ours')
    if (ours === undefined) continue
    if (v0.error !== undefined) {
      verdicts.push({ met: true, text: `${v0.subject.store}: the original Verrou failed the cycle test (${v0.error})` })
      continue
    }
    const r = ours.latency.p50 / v0.latency.p50
    verdicts.push({ met: r < 1, text: `${v0.subject.store}: cycle p50 ${ratio(r)} the original Verrou's (target < 1.00×)` })
  }

  const contended = result.contention.filter((row) => row.windows > 0 && row.error === undefined)
  for (const ours of contended.filter((row) => row.subject.role === 'ours')) {
    const others = result.contention.filter((row) => row.subject.store === ours.subject.store && row.subject.role !== 'ours')
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
  return verdicts
}

function describeRates(rows: ContentionResult[]): string {
  return rows.map((row) => `${row.subject.label} (${whole(row.acquisitionsPerSecond)})`).join(', ')
}
