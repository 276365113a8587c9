import { randomUUID } from 'node:crypto'
import { redisUrl } from '@verrou/test-utils/connection-settings'
import { afterEach, describe, expect, test } from 'vitest'
import { type Job, mostCallsAtOnce, runJobs } from './job_runner.js'
import { openRunnerFactory } from './setup.js'

describe('the rate-limited job runner, on the real Redis', () => {
  const opened: Array<ReturnType<typeof openRunnerFactory>> = []
  afterEach(async () => {
    for (const runner of opened.splice(0)) await runner.close()
  })

  test('five runners, twenty jobs, three API permits: never more than three calls at once, settings never half-read', async () => {
    const prefix = `example-job-runner-${randomUUID().slice(0, 8)}:`
    for (let index = 0; index < 5; index++) opened.push(openRunnerFactory(redisUrl, prefix))
    const jobs: Job[] = Array.from({ length: 20 }, (_, index) => ({ id: `job-${index}`, durationMs: 20 + (index % 3) * 10 }))

    const report = await runJobs({ jobs, factories: opened.map((runner) => runner.factory), apiLimit: 3, settingsChanges: 3 })

    expect(report.calls.map((call) => call.job).sort()).toEqual(jobs.map((job) => job.id).sort())
    const most = mostCallsAtOnce(report.calls)
    expect(most).toBeLessThanOrEqual(3)
    // Five runners and twenty jobs: the permits were really shared, not taken one at a time.
    expect(most).toBeGreaterThan(1)
    expect(report.writes).toBe(3)
    expect(report.reads).toHaveLength(20)
    expect(report.reads.filter((read) => !read.consistent)).toEqual([])
    // Each permit's fencing token is its own.
    expect(new Set(report.calls.map((call) => call.fencingToken)).size).toBe(20)
  })

  test('the check itself: overlapping calls are counted', () => {
    const calls = [
      { job: 'a', runner: 'r', start: 0, end: 10, fencingToken: 1 },
      { job: 'b', runner: 'r', start: 5, end: 15, fencingToken: 2 },
      { job: 'c', runner: 'r', start: 10, end: 20, fencingToken: 3 },
    ]
    expect(mostCallsAtOnce(calls)).toBe(2)
  })
})
