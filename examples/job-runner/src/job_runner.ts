import type { LockFactory } from '@verrou/core'

/** A job: export one customer's data through a partner API that allows `apiLimit` calls at once. */
export interface Job {
  id: string
  /** How long the partner API takes for it, ms. */
  durationMs: number
}

/** What the runner saw, for the caller (and the tests) to check. */
export interface RunReport {
  /** Every API call, on this process's monotonic clock, with the permit's fencing token. */
  calls: Array<{ job: string; runner: string; start: number; end: number; fencingToken: number }>
  /** Every time a job read the export settings, with the settings it saw. */
  reads: Array<{ job: string; version: number; consistent: boolean }>
  /** Every settings change, done under the write lock. */
  writes: number
}

/** The export settings, changed now and then by an operator. Two fields that must always agree. */
export interface Settings {
  version: number
  checksum: string
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const checksumOf = (version: number) => `v${version}`

/**
 * Runners (one per process in production; here each has its own factory, hence its own connection) share a
 * queue of jobs. Each job reads the export settings under a read lock, then calls the partner API holding
 * one of `apiLimit` semaphore permits. Now and then an operator rewrites the settings under the write lock:
 * no job ever reads them half-written, and once the operator waits, new readers queue behind it.
 */
export async function runJobs(options: {
  jobs: Job[]
  /** One factory per runner: each stands for a process with its own connection. */
  factories: LockFactory[]
  apiLimit: number
  /** Rewrites of the settings, spread over the run. */
  settingsChanges: number
  log?: (line: string) => void
}): Promise<RunReport> {
  const { jobs, factories, apiLimit, settingsChanges, log = () => {} } = options
  const report: RunReport = { calls: [], reads: [], writes: 0 }
  // The shared resources: stands for a settings row and the partner API.
  const settings: Settings = { version: 0, checksum: checksumOf(0) }
  const queue = [...jobs]

  const runner = async (factory: LockFactory, name: string) => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      const current = job
      // Read the settings as a reader: many jobs at once, never beside the operator.
      const settingsLock = factory.createReadWriteLock('export-settings', '10s')
      await settingsLock.read.run(async () => {
        const seen = { ...settings }
        await sleep(1)
        report.reads.push({ job: current.id, version: seen.version, consistent: settings.checksum === checksumOf(seen.version) })
      })
      // Call the API holding a permit: at most `apiLimit` calls at once across every runner.
      const permit = factory.createSemaphore('partner-api', { limit: apiLimit, ttl: '10s' })
      await permit.run(async ({ fencingToken }) => {
        const start = performance.now()
        log(`${name} exports ${current.id} (permit token ${fencingToken})`)
        await sleep(current.durationMs)
        report.calls.push({ job: current.id, runner: name, start, end: performance.now(), fencingToken: fencingToken! })
      })
    }
  }

  const operator = async (factory: LockFactory) => {
    for (let change = 1; change <= settingsChanges; change++) {
      await sleep(15)
      const settingsLock = factory.createReadWriteLock('export-settings', '10s')
      await settingsLock.write.run(async () => {
        // Written in two steps: a reader beside this writer would see them disagree.
        settings.version += 1
        await sleep(3)
        settings.checksum = checksumOf(settings.version)
        report.writes += 1
        log(`operator changed the settings to version ${settings.version}`)
      })
    }
  }

  await Promise.all([...factories.map((factory, index) => runner(factory, `runner-${index + 1}`)), operator(factories[0]!)])
  return report
}

/** The most API calls in flight at one instant. */
export function mostCallsAtOnce(calls: RunReport['calls']): number {
  const events = calls.flatMap((call) => [
    { at: call.start, change: 1 },
    { at: call.end, change: -1 },
  ])
  // An end and a start at the same instant do not overlap.
  events.sort((a, b) => a.at - b.at || a.change - b.change)
  let current = 0
  let most = 0
  for (const event of events) {
    current += event.change
    most = Math.max(most, current)
  }
  return most
}
