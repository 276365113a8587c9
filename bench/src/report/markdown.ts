import type { Machine } from '../environment.js'
import type { BenchResult, ContentionResult, CycleResult, ScalingResult } from '../run.js'
import { LEASE_MS } from '../subject.js'
import { FLOOR_POLL_MS } from '../subjects/floor_polling.js'
import { DEFAULT_RETRY_DELAY_MS, SHORT_RETRY_DELAY_MS } from '../subjects/verrou.js'
import { SEMAPHORE_LIMIT } from '../subjects/verrou_semaphore.js'
import { cell, ms, perOp, ratio, whole } from './format.js'
import { pairedRatio, type Verdict } from './targets.js'

export interface ReportContext {
  result: BenchResult
  machine: Machine
  /** Package name to version. */
  versions: Record<string, string>
  /** Exactly what was typed, e.g. `pnpm bench --quick`. */
  command: string
  verdicts: Verdict[]
  /** Path of the chart relative to the markdown file. */
  chart: string
  date: Date
}

export function renderMarkdown(context: ReportContext): string {
  const { result, machine, versions, command, verdicts, chart, date } = context
  const { plan } = result
  const lines: string[] = []
  const push = (...more: string[]) => lines.push(...more)

  push(
    '# Benchmarks',
    '',
    `<!-- Written by \`${command}\`; run it again rather than editing this file. -->`,
    '',
    `Every store against the raw client floor and the libraries users would pick instead, measured in one run`,
    `of \`${command}\` on ${date.toISOString().slice(0, 16).replace('T', ' ')} UTC (${(result.durationMs / 60_000).toFixed(1)} minutes).`,
    'Compare numbers within this run only: ratios are what carries over to other machines.',
    '',
    `![${plan.name} run: cycle latency relative to the floor, and acquisitions per second under contention](${chart})`,
    '',
    '## Targets',
    '',
    ...(verdicts.length === 0
      ? ['No target could be checked in this run.']
      : verdicts.map((v) => `- ${v.met ? '✅' : '❌'} ${v.text}`)),
    '',
    ...perStore(result),
    '## Uncontended cycles',
    '',
    `Acquire + release on a key never used before, one after the other, on one connection (pools of size 1):`,
    `${plan.cycles.rounds} rounds of ${plan.cycles.sliceMs} ms per subject after ${plan.cycles.warmupCycles} untimed cycles.`,
    '"× floor" divides the p50 by the raw floor\'s p50 on the same store. Round trips are requests counted on the',
    'client (a pipelined or scripted request counts once).',
    '',
    '| Store | Subject | Cycles/s | p50 ms | p99 ms | p50 × floor | Round trips / cycle |',
    '|---|---|--:|--:|--:|--:|--:|',
  )
  for (const row of result.cycles) push(cycleRow(row, result.cycles))
  push(...pairedSection(result))
  push(...costBreakdown(result.cycles))
  push(...scalingSection(result))
  push(...lockCpuSection(result))
  push(
    '',
    '## Contention',
    '',
    `${plan.contention.workers} workers in one process, each with its own client and connections (the in-process`,
    `stores share one store object), loop on one key: acquire, hold ${plan.contention.holdMs} ms, release, acquire again.`,
    `${plan.contention.rounds} window${plan.contention.rounds === 1 ? '' : 's'} of ${plan.contention.durationMs / 1000} s per subject, interleaved with the other subjects.`,
    'All workers share one Node.js event loop, as the issue asks: waiters woken by a release spend CPU in the',
    'same process as the next holder, which one process per worker would not.',
    '"Fewest / most" are the acquisitions of one worker in one window (fairness: 0 is a starved worker);',
    '"retaken by the releaser" is the share of hand-offs in which the worker that released got the lock straight back.',
    "The hand-off is the time from a holder calling release to the next holder's acquire resolving.",
    '',
    '| Store | Subject | Acquisitions/s | Fewest / mean / most | Longest wait ms | Hand-off p50 ms | Hand-off p99 ms | Round trips / acquisition | Notes |',
    '|---|---|--:|--:|--:|--:|--:|--:|---|',
  )
  for (const row of result.contention) push(contentionRow(row))
  push(
    '',
    '## Contention across processes',
    '',
    `The same loop with each of the ${plan.contention.workers} workers in an OS process of its own, as the processes of an`,
    'application would be: nothing is shared but the server, so no common event loop orders the waiters, and a',
    'release reaches the others only through the store. Every store that lives outside the process, ours with',
    'the shipped defaults against the raw client (which lets the releaser take the lock straight back).',
    'Times come from one clock all processes share. "Longest wait" is the longest single `acquire()` (a worker',
    'starved for the whole window shows as a wait about as long as the window). Before the window, the workers',
    'contend for a moment on the same key, so that each has waited on it once (its listener is open, it is',
    'subscribed to the key and its queue statements are prepared: the first wait of a process pays for that); none',
    'closes its connections until all are done. "Round trips / acquisition" divides every request of the window by',
    "every acquisition they paid for, each worker's last one included (asked for in the window, granted after it).",
    '"Hand-off split" is where a hand-off goes, each part the median over hand-offs: the releasing holder\'s',
    "release round trip; from that release resolving to the next holder's granting attempt leaving (negative when",
    "the attempt left first: a poll already on its way, or an announcement that overtook the release's reply); that",
    "attempt's round trip, up to `lock()` resolving.",
    '',
    '| Store | Subject | Acquisitions/s | × raw client | Fewest / mean / most | Longest wait ms | Hand-off p50 ms | Hand-off split ms (release / to attempt / attempt) | Round trips / acquisition | Notes |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|---|',
  )
  for (const row of result.processContention) push(processContentionRow(row, result.processContention))
  push(
    '',
    '## What runs',
    '',
    `- **verrou**: this repository's \`Lock\` (via \`LockFactory\`) on each store's driver, lease ${LEASE_MS / 1000} s, all`,
    `  defaults except the retry delay: the default ${DEFAULT_RETRY_DELAY_MS} ms (the "verrou" rows, also the one in the cycle`,
    `  table and the targets) and ${SHORT_RETRY_DELAY_MS} ms (contention only). Waiters also wake on release notifications where`,
    "  the store has them (memory, Redis, PostgreSQL, Upstash) and at the holder's lease end when the store reports it.",
    '- **its store alone, no Lock**: the same driver called directly (`store.acquire` / `store.release`): the gap to',
    '  the "verrou" row is what `Lock` itself costs; the gap to the floor is what the driver costs.',
    `- **raw floor**: the client library by hand, one atomic request to acquire and one to release, no fencing`,
    `  token, polling every ${FLOOR_POLL_MS} ms while held. Redis/Upstash: \`SET NX PX\` + EVALSHA compare-and-delete; PostgreSQL:`,
    '  an `INSERT ... ON CONFLICT DO UPDATE ... WHERE` lease upsert + owner-checked `DELETE`; MySQL: `INSERT ... ON',
    '  DUPLICATE KEY UPDATE` + `DELETE` (prepared); DynamoDB: conditional `PutItem` + conditional `DeleteItem`;',
    '  memory: a `Map` behind async calls.',
    '- **@verrou/core 0.5.2**: the original Verrou from npm, default settings (retry every 250 ms), its own drivers:',
    '  memory, Redis, DynamoDB, and PostgreSQL / MySQL through its knex store.',
    '- **redlock 5.0.0-beta.2**: one Redis, default settings (10 retries 200 ms apart + up to 200 ms jitter, then',
    '  `ExecutionError`, after which the worker asks again: counted as "gave up").',
    '- **redis-semaphore 5.8.0**: `Mutex` with defaults (poll every 10 ms, give up after 10 s, refresh every 8 s).',
    `- **Semaphores** (the rows marked "limit ${SEMAPHORE_LIMIT}"): each \`lock\` takes one of ${SEMAPHORE_LIMIT} permits of the key. Ours is`,
    "  `createSemaphore(key, { limit })` with the shipped defaults on every store; on Redis beside redis-semaphore's",
    `  \`Semaphore\` (same defaults as its Mutex). Uncontended, "× floor" still divides by the mutex floor: a permit`,
    `  against the cheapest possible lock. Under contention ${SEMAPHORE_LIMIT} of the workers hold at once, so compare semaphore rows with`,
    '  each other, not with the mutexes.',
    '',
  )
  if (result.errors.length > 0) {
    push('**This run had errors** (its numbers are incomplete):', '')
    for (const error of result.errors) push(`- ${error}`)
    push('')
  }
  push(
    '## Machine and versions',
    '',
    `- Command: \`${command}\` (from the repository root, services up; it builds the packages first)`,
    `- Commit: ${machine.commit}`,
    `- CPU: ${machine.cpu}, ${machine.cores} cores; memory ${machine.memoryGiB} GiB; ${machine.os}; Node.js ${machine.node.replace(/^v/, '')}`,
    `- Load average (1 min): ${machine.loadAtStart.toFixed(2)} at the start, ${machine.loadAtEnd.toFixed(2)} at the end. The servers run`,
    '  on the same machine as the bench; anything else running (other test suites) adds noise to every subject alike.',
    ...result.stores.filter((store) => store.server !== undefined).map((store) => `- ${store.label}: ${store.server}`),
    `- Ours: the workspace packages (@verrou/core and drivers) at the commit above.`,
    `- Peers and clients: ${Object.entries(versions)
      .map(([name, version]) => `${name === 'verrou-v0' ? '@verrou/core (as verrou-v0)' : name} ${version}`)
      .join(', ')}`,
    '',
  )
  return lines.join('\n')
}

/**
 * The issue's summary per store: ours against the floor and the original, round trips, and what `Lock`
 * itself costs in CPU (measured once: the same code runs over every store).
 */
function perStore(result: BenchResult): string[] {
  const ok = result.cycles.filter((row) => row.error === undefined && row.cycles > 0)
  const lockCpu = result.lockCpu === undefined ? '–' : micros(result.lockCpu.overheadNs)
  const lines: string[] = []
  for (const store of [...new Set(ok.map((row) => row.subject.store))]) {
    const find = (suffix: string) => ok.find((row) => row.subject.id === `${store}/${suffix}`)
    const ours = find('verrou-250ms')
    const floor = find('floor')
    const v0 = result.cycles.find((row) => row.subject.id === `${store}/verrou-v0`)
    if (ours === undefined) continue
    const vsFloor = floor === undefined ? '–' : ratio(ours.latency.p50 / floor.latency.p50)
    const pairedFloor = pairedRatio(result.pairedCycles, store, 'floor')
    const pairedV0 = pairedRatio(result.pairedCycles, store, 'verrou-v0')
    const trips = `${perOp(ours.roundTripsPerCycle)} / ${floor === undefined ? '–' : perOp(floor.roundTripsPerCycle)}`
    // Cycles/s against the original: the inverse of the paired time ratio, else of the two rows' rates.
    const original =
      v0 === undefined
        ? 'not in 0.5.2 | –'
        : v0.error !== undefined || v0.cycles === 0
          ? `failed | –`
          : `${whole(v0.cyclesPerSecond)} | ${ratio(pairedV0 === undefined ? ours.cyclesPerSecond / v0.cyclesPerSecond : 1 / pairedV0.ratio)}`
    lines.push(
      `| ${store} | ${whole(ours.cyclesPerSecond)} | ${pairedFloor === undefined ? '–' : ratio(pairedFloor.ratio)} | ${vsFloor} | ${trips} | ${lockCpu} | ${original} |`,
    )
  }
  if (lines.length === 0) return []
  return [
    '## Per store',
    '',
    'Ours ("verrou", shipped defaults) in the uncontended cycles below: cycle time over the raw floor\'s, paired',
    '(see "Paired cycles" below: the ratio the targets use) and as p50 latencies, round trips per cycle (ours / the',
    'floor\'s), the `Lock` layer\'s own CPU per cycle (from "Lock CPU per cycle" below: the same code over every',
    'store), and the original Verrou 0.5.2 on the same store (cycles/s ratio from the paired blocks where measured).',
    '',
    '| Store | verrou cycles/s | Paired × floor | p50 × floor | Round trips / cycle (ours / floor) | Lock CPU / cycle | 0.5.2 cycles/s | verrou × 0.5.2 (cycles/s) |',
    '|---|--:|--:|--:|--:|--:|--:|--:|',
    ...lines,
    '',
  ]
}

/** Ours against the floor and the original, cycle for cycle. */
function pairedSection(result: BenchResult): string[] {
  const rows = result.pairedCycles
  if (rows.length === 0) return []
  const { pairs, pairBlockMs } = result.plan.cycles
  return [
    '',
    '### Paired cycles',
    '',
    `After the rounds, ours ("verrou") against the raw floor and against the original, on the same clients: ${pairs}`,
    `pairs of blocks, each block the same number of cycles on both sides (about ${pairBlockMs} ms at the other side's p50,`,
    "from 5 to 50 cycles), the side that goes first swapping every pair. A pair's ratio is our block's time over",
    "the other's; the table gives the median over pairs. Two blocks a few milliseconds apart share the state of the",
    'machine, so a slow spell lands on both sides or on few pairs, which the median sets aside: this is the',
    "issue's measure (paired, side by side in one run), and the targets use it.",
    '',
    '| Store | Against | Ours × theirs (cycle time) | Block pairs | Cycles per block |',
    '|---|---|--:|--:|--:|',
    ...rows.map((row) =>
      row.error === undefined
        ? `| ${row.store} | ${cell(row.against.label)} | ${ratio(row.ratio)} | ${row.pairs} | ${row.cyclesPerBlock} |`
        : `| ${row.store} | ${cell(row.against.label)} | failed: ${cell(row.error)} | – | ${row.cyclesPerBlock} |`,
    ),
  ]
}

/** Cycles/s of each subject at each concurrency, and its ratio to the floor's at the same concurrency. */
function scalingSection(result: BenchResult): string[] {
  const { concurrencies, rounds, sliceMs, poolSize, warmupCyclesPerCaller } = result.plan.scaling
  if (result.scaling.length === 0) return []
  const subjects = [...new Map(result.scaling.map((row) => [row.subject.id, row.subject])).values()]
  const rows = subjects.map((subject) => {
    const at = (concurrency: number) =>
      result.scaling.find((row) => row.subject.id === subject.id && row.concurrency === concurrency)
    const head = `| ${subject.store} | ${cell(label(subject))} |`
    const failed = concurrencies.map(at).find((row) => row?.error !== undefined)
    if (failed?.error !== undefined) {
      const blanks = Array.from({ length: concurrencies.length * 2 }, () => '')
      return `${head} failed with ${failed.concurrency} callers: ${cell(failed.error)} | ${blanks.join(' | ')} |`
    }
    const cells = concurrencies.map((concurrency) => {
      const row = at(concurrency)
      const floor = result.scaling.find(
        (other) => other.subject.store === subject.store && other.subject.role === 'floor' && other.concurrency === concurrency,
      )
      if (row === undefined) return '– | –'
      return `${whole(row.cyclesPerSecond)} | ${scalingRatio(row, floor)}`
    })
    const trips = concurrencies.map((concurrency) => perOp(at(concurrency)?.roundTripsPerCycle ?? Number.NaN))
    return `${head} ${cells.join(' | ')} | ${trips.join(' / ')} |`
  })
  return [
    '',
    '## Scaling',
    '',
    `1 to ${Math.max(...concurrencies)} callers in one process, each on keys of its own (never contended), sharing ONE client:`,
    `one connection on Redis and Upstash, one pool of ${poolSize} connections on PostgreSQL and MySQL, one client on`,
    'DynamoDB, one store in memory. Each caller loops acquire + release on keys never used before. Per concurrency,',
    `each subject gets a fresh client, ${warmupCyclesPerCaller} untimed cycles per caller, then a ${sliceMs} ms slice; ${rounds} round${rounds === 1 ? '' : 's'},`,
    'subjects taking turns as in the cycle test. "× raw" is the median over rounds of cycles/s over the raw floor\'s in',
    'the same round at the same concurrency (a few seconds apart): a slow spell of the machine moves one round, not the median.',
    'Round trips are requests counted on the client at each concurrency: the Upstash client sends the commands',
    'issued in one tick as one pipelined request (its default), so there a cycle costs less than one request.',
    '',
    `| Store | Subject | ${concurrencies.map((c) => `${c} caller${c === 1 ? '' : 's'}: cycles/s | × raw`).join(' | ')} | Round trips / cycle (${concurrencies.join(' / ')}) |`,
    `|---|---|${concurrencies.map(() => '--:|--:|').join('')}--:|`,
    ...rows,
  ]
}

function scalingRatio(row: ScalingResult, floor: ScalingResult | undefined): string {
  if (row.subject.role === 'floor') return '1.00×'
  if (row.ratioToFloor !== undefined) return ratio(row.ratioToFloor)
  if (floor === undefined || floor.error !== undefined || floor.cyclesPerSecond <= 0) return '–'
  return ratio(row.cyclesPerSecond / floor.cyclesPerSecond)
}

function lockCpuSection(result: BenchResult): string[] {
  const cpu = result.lockCpu
  if (cpu === undefined) return []
  return [
    '',
    '## Lock CPU per cycle',
    '',
    '`Lock` (a `LockFactory` with default settings, a new lock per cycle) over a store whose methods return already',
    'resolved promises, against that store called directly, in alternating blocks of',
    `${whole(cpu.cyclesPerBlock)} cycles, ${cpu.rounds} rounds, after one untimed block each. Timed in CPU time of the process (user +`,
    'system, garbage collection included), so that time preempted by other processes does not count. Medians over',
    "rounds; Lock's own cost is the median of the paired differences. Measured first, before any server or worker process starts.",
    '',
    "| Lock over the instant store | The store alone | Lock's own CPU per cycle |",
    '|--:|--:|--:|',
    `| ${micros(cpu.lockNs)} | ${micros(cpu.bareNs)} | ${micros(cpu.overheadNs)} |`,
  ]
}

/** Nanoseconds shown in µs. */
const micros = (ns: number) => (Number.isFinite(ns) ? `${(ns / 1000).toFixed(2)} µs` : '–')

/** Per store: how much of our p50 the driver adds over the floor, and how much Lock adds over the driver. */
function costBreakdown(rows: CycleResult[]): string[] {
  const ok = rows.filter((row) => row.error === undefined && row.cycles > 0)
  const lines: string[] = []
  for (const store of [...new Set(ok.map((row) => row.subject.store))]) {
    const find = (role: string) => ok.find((row) => row.subject.store === store && row.subject.role === role)?.latency.p50
    const floor = find('floor')
    const alone = find('diagnostic')
    const ours = find('ours')
    if (floor === undefined || alone === undefined || ours === undefined) continue
    const us = (value: number) => `${value >= 0 ? '+' : '−'}${whole(Math.abs(value * 1000))} µs`
    lines.push(`| ${store} | ${whole(floor * 1000)} µs | ${us(alone - floor)} | ${us(ours - alone)} | ${whole(ours * 1000)} µs |`)
  }
  if (lines.length === 0) return []
  return [
    '',
    'Where our p50 goes, from the rows above: the driver alone against the floor (its statements or scripts:',
    'fencing counter, server-side expiry, release notification), then `Lock` around the driver (owner id, retry',
    'policy, operation timeout).',
    '',
    '| Store | Raw floor p50 | Driver over the floor | Lock over the driver | verrou p50 |',
    '|---|--:|--:|--:|--:|',
    ...lines,
  ]
}

function cycleRow(row: CycleResult, all: CycleResult[]): string {
  const head = `| ${row.subject.store} | ${cell(label(row.subject))} |`
  if (row.error !== undefined) return `${head} failed: ${cell(row.error)} | | | | |`
  const floor = all.find((other) => other.subject.store === row.subject.store && other.subject.role === 'floor')
  const vsFloor =
    row.subject.role === 'floor' ? '1.00×' : floor && floor.error === undefined ? ratio(row.latency.p50 / floor.latency.p50) : '–'
  return `${head} ${whole(row.cyclesPerSecond)} | ${ms(row.latency.p50)} | ${ms(row.latency.p99)} | ${vsFloor} | ${perOp(row.roundTripsPerCycle)} |`
}

function contentionRow(row: ContentionResult): string {
  const head = `| ${row.subject.store} | ${cell(label(row.subject))} |`
  if (row.error !== undefined) return `${head} failed | | | | | | ${cell(row.error)} |`
  return `${head} ${whole(row.acquisitionsPerSecond)} | ${fairness(row)} | ${ms(row.longestWaitMs)} | ${ms(row.handoff.p50)} | ${ms(row.handoff.p99)} | ${perOp(row.roundTripsPerAcquisition)} | ${contentionNotes(row)} |`
}

function processContentionRow(row: ContentionResult, all: ContentionResult[]): string {
  const head = `| ${row.subject.store} | ${cell(label(row.subject))} |`
  if (row.error !== undefined) return `${head} failed | | | | | | | ${cell(row.error)} |`
  const floor = all.find((other) => other.subject.store === row.subject.store && other.subject.role === 'floor')
  const vsFloor =
    row.subject.role === 'floor'
      ? '1.00×'
      : floor && floor.error === undefined && floor.acquisitionsPerSecond > 0
        ? ratio(row.acquisitionsPerSecond / floor.acquisitionsPerSecond)
        : '–'
  const split = row.handoffSplit
  const splitCell = split === undefined ? '–' : `${ms(split.release)} / ${ms(split.toAttempt)} / ${ms(split.attempt)}`
  return `${head} ${whole(row.acquisitionsPerSecond)} | ${vsFloor} | ${fairness(row)} | ${ms(row.longestWaitMs)} | ${ms(row.handoff.p50)} | ${splitCell} | ${perOp(row.roundTripsPerAcquisition)} | ${contentionNotes(row)} |`
}

const fairness = (row: ContentionResult) => `${row.fewest} / ${whole(row.meanPerWorker)} / ${row.most}`

function contentionNotes(row: ContentionResult): string {
  const notes: string[] = []
  notes.push(`${Math.round(row.retakeShare * 100)}% retaken by the releaser`)
  if (row.gaveUp > 0) notes.push(`gave up ${row.gaveUp}× and asked again`)
  if (row.overlaps > 0) notes.push(`**${row.overlaps} acquisitions overlapped the previous holder**`)
  return notes.join('; ')
}

/** Ours in bold, so our rows stand out among the peers. */
function label(subject: { label: string; role: string }): string {
  return subject.role === 'ours' ? `**${subject.label}**` : subject.label
}
