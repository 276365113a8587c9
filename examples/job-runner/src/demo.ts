import { randomUUID } from 'node:crypto'
import { type Job, mostCallsAtOnce, runJobs } from './job_runner.js'
import { openRunnerFactory } from './setup.js'

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
// A prefix of its own, so the demo never meets another run's permits.
const prefix = `demo-${randomUUID().slice(0, 8)}:`
const runners = Array.from({ length: 4 }, () => openRunnerFactory(url, prefix))
const jobs: Job[] = Array.from({ length: 12 }, (_, index) => ({ id: `customer-${index + 1}`, durationMs: 40 }))
try {
  const report = await runJobs({
    jobs,
    factories: runners.map((runner) => runner.factory),
    apiLimit: 3,
    settingsChanges: 3,
    log: console.log,
  })
  console.log(`\n${report.calls.length} exports, at most ${mostCallsAtOnce(report.calls)} API calls at once (limit 3)`)
  console.log(`${report.reads.length} settings reads, ${report.reads.filter((read) => !read.consistent).length} half-written`)
} finally {
  for (const runner of runners) await runner.close()
}
