import { writeFileSync } from 'node:fs'
import inspector from 'node:inspector/promises'
import { BACKENDS } from './backends/index.js'
import { runContention } from './contention.js'
import type { StoreId } from './subject.js'

const store = (process.argv[2] ?? 'mysql') as StoreId
const which = process.argv[3] ?? 'verrou-250ms'
const runId = Math.random().toString(16).slice(2, 10)
const backend = await BACKENDS[store].start({ runId })
try {
  const s = backend.subjects.find((x) => x.id === `${store}/${which}`)!
  const session = new inspector.Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await session.post('Profiler.start')
  const r = await runContention(s, `vbench:${runId}:c`, { workers: 8, holdMs: 2, durationMs: 4000 })
  const { profile } = await session.post('Profiler.stop')
  writeFileSync(`${process.env.OUT}/p.cpuprofile`, JSON.stringify(profile))
  console.log(which, r.acquisitions, 'acquisitions', (r.counters.roundTrips / r.completed).toFixed(2), 'rt/acq')
} finally {
  await backend.stop()
}
