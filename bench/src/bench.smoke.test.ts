import { describe, expect, it } from 'vitest'
import { PLANS } from './plan.js'
import { renderChart } from './report/chart.js'
import { renderMarkdown } from './report/markdown.js'
import { evaluateTargets } from './report/targets.js'
import { type BenchResult, runBench } from './run.js'

// Measures nothing worth reading (windows of a few hundred ms): it proves that every subject on the
// in-process store and on Redis runs end to end and yields numbers, and that the report renders them.
describe('pnpm bench (smoke)', () => {
  let result: BenchResult

  it('runs every subject on memory and Redis without errors', async () => {
    result = await runBench({ plan: PLANS.smoke, stores: ['memory', 'redis'] })
    expect(result.errors).toEqual([])
    expect(result.stores.map((store) => store.store)).toEqual(['memory', 'redis'])
    expect(result.stores.find((store) => store.store === 'redis')?.server).toMatch(/^Redis \d/)
    const ids = result.contention.map((row) => row.subject.id)
    for (const expected of ['verrou-250ms', 'verrou-10ms', 'floor', 'verrou-v0', 'redlock', 'redis-semaphore']) {
      expect(ids).toContain(`redis/${expected}`)
    }
  }, 120_000)

  it('times every uncontended cycle', () => {
    expect(result.cycles.length).toBeGreaterThanOrEqual(8)
    for (const row of result.cycles) {
      expect(row.error, row.subject.id).toBeUndefined()
      expect(row.cycles, row.subject.id).toBeGreaterThan(0)
      expect(row.cyclesPerSecond, row.subject.id).toBeGreaterThan(0)
      expect(row.latency.p50, row.subject.id).toBeGreaterThan(0)
      expect(row.latency.p99, row.subject.id).toBeGreaterThanOrEqual(row.latency.p50)
      expect(Number.isFinite(row.latency.p99), row.subject.id).toBe(true)
      // A cycle is at least an acquire and a release: two requests to Redis, none in memory.
      if (row.subject.store === 'redis') expect(row.roundTripsPerCycle, row.subject.id).toBeGreaterThanOrEqual(2)
      else expect(row.roundTripsPerCycle, row.subject.id).toBe(0)
    }
  })

  it('pairs ours against the floor and the original, block for block, on both stores', () => {
    for (const store of ['memory', 'redis']) {
      for (const against of ['floor', 'verrou-v0']) {
        const row = result.pairedCycles.find((each) => each.store === store && each.against.id === `${store}/${against}`)
        const name = `${store} against ${against}`
        expect(row, name).toBeDefined()
        expect(row?.error, name).toBeUndefined()
        expect(row?.ours.id, name).toBe(`${store}/verrou-250ms`)
        expect(row?.pairs, name).toBe(PLANS.smoke.cycles.pairs)
        expect(row?.cyclesPerBlock, name).toBeGreaterThanOrEqual(5)
        expect(row?.ratio, name).toBeGreaterThan(0)
        expect(Number.isFinite(row?.ratio), name).toBe(true)
      }
    }
    expect(result.pairedCycles).toHaveLength(4)
  })

  it('runs ours, the raw client and the original with 1, 8 and 64 callers sharing one client', () => {
    const { concurrencies } = PLANS.smoke.scaling
    expect(concurrencies).toEqual([1, 8, 64])
    for (const store of ['memory', 'redis']) {
      for (const subject of ['verrou-250ms', 'floor', 'verrou-v0']) {
        for (const concurrency of concurrencies) {
          const row = result.scaling.find((each) => each.subject.id === `${store}/${subject}` && each.concurrency === concurrency)
          const name = `${store}/${subject} × ${concurrency}`
          expect(row, name).toBeDefined()
          expect(row?.error, name).toBeUndefined()
          // Every caller starts before the slice can end, so each finishes at least one cycle.
          expect(row?.cycles, name).toBeGreaterThanOrEqual(concurrency)
          expect(row?.cyclesPerSecond, name).toBeGreaterThan(0)
          if (store === 'redis') expect(row?.roundTripsPerCycle, name).toBeGreaterThanOrEqual(2)
          else expect(row?.roundTripsPerCycle, name).toBe(0)
          // Against the floor round by round (one round here: that round's ratio); the floor has none.
          if (subject === 'floor') expect(row?.ratioToFloor, name).toBeUndefined()
          else expect(row?.ratioToFloor, name).toBeGreaterThan(0)
        }
      }
    }
    expect(result.scaling).toHaveLength(2 * 3 * concurrencies.length)
  })

  it("measures Lock's CPU per cycle against the bare store calls", () => {
    const cpu = result.lockCpu
    expect(cpu).toBeDefined()
    expect(cpu?.rounds).toBe(PLANS.smoke.lockCpu.rounds)
    expect(cpu?.lockNs).toBeGreaterThan(0)
    expect(cpu?.bareNs).toBeGreaterThanOrEqual(0)
    expect(Number.isFinite(cpu?.overheadNs)).toBe(true)
  })

  it('counts acquisitions per worker and hand-offs under contention', () => {
    for (const row of result.contention) {
      // A peer library may fail (the original Verrou's memory store does): it must then say why.
      if (row.error !== undefined) {
        expect(row.subject.role, row.subject.id).toBe('peer')
        expect(row.error.length).toBeGreaterThan(0)
        continue
      }
      expect(row.windows, row.subject.id).toBe(1)
      expect(row.acquisitionsPerSecond, row.subject.id).toBeGreaterThan(0)
      expect(row.most, row.subject.id).toBeGreaterThan(0)
      expect(row.fewest, row.subject.id).toBeLessThanOrEqual(row.most)
      expect(row.handoff.count, row.subject.id).toBeGreaterThan(0)
      expect(row.handoff.p50, row.subject.id).toBeGreaterThanOrEqual(0)
      expect(row.overlaps, row.subject.id).toBe(0)
    }
  })

  it('runs ours and the raw client with every worker in a process of its own', () => {
    expect(result.processContention.map((row) => row.subject.id)).toEqual(['redis/verrou-250ms', 'redis/floor'])
    for (const row of result.processContention) {
      expect(row.error, row.subject.id).toBeUndefined()
      expect(row.windows, row.subject.id).toBe(1)
      expect(row.acquisitionsPerSecond, row.subject.id).toBeGreaterThan(0)
      expect(row.meanPerWorker, row.subject.id).toBeGreaterThan(0)
      expect(row.fewest, row.subject.id).toBeLessThanOrEqual(row.most)
      expect(row.longestWaitMs, row.subject.id).toBeGreaterThan(0)
      // Every worker process counted its own requests: a Redis acquisition is at least one.
      expect(row.roundTripsPerAcquisition, row.subject.id).toBeGreaterThanOrEqual(1)
      expect(row.overlaps, row.subject.id).toBe(0)
    }
  })

  it('renders the markdown report, the targets and the chart', () => {
    const verdicts = evaluateTargets(result)
    expect(verdicts.some((verdict) => /^redis: cycle time [\d.]+× the raw floor's, paired/.test(verdict.text))).toBe(true)
    expect(verdicts.some((verdict) => /^redis: cycle time [\d.]+× the original Verrou's, paired/.test(verdict.text))).toBe(true)
    const markdown = renderMarkdown({
      result,
      machine: { cpu: 'cpu', cores: 2, memoryGiB: 1, os: 'os', node: 'v20', loadAtStart: 0, loadAtEnd: 0, commit: 'abc' },
      versions: { redlock: '5.0.0-beta.2' },
      command: 'pnpm bench --smoke',
      verdicts,
      chart: 'smoke.svg',
      date: new Date(),
    })
    expect(markdown).toContain('| redis | **verrou** |')
    expect(markdown).toContain('| Store | Subject | Acquisitions/s |')
    expect(markdown).toContain('## Contention across processes')
    expect(markdown).toContain('## Per store')
    expect(markdown).toMatch(/\| redis \| [\d,]+ \| [\d.]+× \| [\d.]+× \| 2\.0 \/ 2\.0 \| [\d.]+ µs \| [\d,]+ \| [\d.]+× \|/)
    expect(markdown).toContain('### Paired cycles')
    expect(markdown).toMatch(/\| redis \| raw floor \(ioredis\) \| [\d.]+× \| 2 \| \d+ \|/)
    expect(markdown).toContain('## Scaling')
    expect(markdown).toContain(
      '| Store | Subject | 1 caller: cycles/s | × raw | 8 callers: cycles/s | × raw | 64 callers: cycles/s |',
    )
    expect(markdown).toMatch(/\| redis \| raw floor \(ioredis\) \| [\d,]+ \| 1\.00× \|/)
    expect(markdown).toContain('## Lock CPU per cycle')
    for (const concurrency of [1, 8, 64]) {
      expect(verdicts.some((verdict) => verdict.text.startsWith(`redis, ${concurrency} caller`))).toBe(true)
    }
    expect(verdicts.some((verdict) => verdict.text.startsWith("Lock's own CPU per cycle"))).toBe(true)
    expect(verdicts.some((verdict) => verdict.text.startsWith('redis across processes: longest single wait'))).toBe(true)
    const svg = renderChart(result)
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg).not.toContain('NaN')
  })
})
