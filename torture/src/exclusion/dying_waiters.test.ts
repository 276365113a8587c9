import { type ChildProcess, fork } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type Backend, prepareBackend, STORE_KINDS } from '../backends/stores.js'
import { tally } from '../tally.js'
import { exclusionBreaks } from './intervals.js'
import type { SectionRecord, WorkerTask } from './protocol.js'
import { runWorkers } from './run_workers.js'
import type { VictimMessage, VictimOrder } from './victim_protocol.js'

const here = dirname(fileURLToPath(import.meta.url))
const WORKERS = 8
/** The place lease a waiting Lock asks for (QUEUE_PLACE_LEASE_MS in core): how long a dead place lives. */
const PLACE_LEASE_MS = 2_000
/**
 * Workers run sections until every victim has been signalled and the last dead place has expired, so the
 * queue never runs dry under a victim however slow the backend is on a loaded machine; this is only the cap.
 */
const RUN_FOR_MS = 60_000
/** How long a frozen victim stays frozen: past its place lease, so its place dies under it. */
const FROZEN_MS = PLACE_LEASE_MS + 500
/**
 * The longest any worker may wait: one dead place ahead of it for its whole lease, the renewal period
 * (a third of the lease) in which the waiter behind it learns it now leads, and slack for a loaded machine.
 */
const WAIT_BOUND_MS = Math.round(PLACE_LEASE_MS + PLACE_LEASE_MS / 3 + 4_000)

type Where = 'head' | 'middle'
interface Step {
  signal: 'SIGKILL' | 'SIGSTOP'
  where: Where
}
const STEPS: Step[] = [
  { signal: 'SIGKILL', where: 'head' },
  { signal: 'SIGSTOP', where: 'middle' },
  { signal: 'SIGSTOP', where: 'head' },
  { signal: 'SIGKILL', where: 'middle' },
]
/** A victim that gets the lock before reaching its place is replaced by a spare. */
const VICTIMS = STEPS.length + 4

const isAt = (where: Where, position: number) => (where === 'head' ? position === 0 : position >= 1)
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

interface Victim {
  child: ProcessWithMessages
  /** Where it stood when signalled. */
  signalledAt?: { step: Step; position: number }
  /** Its section, if it got the lock (a thawed victim, or one that never reached its place). */
  record?: SectionRecord
  /** Told to start waiting: a spare that never was has never been in the queue. */
  started: boolean
  finished: Promise<void>
}

interface ProcessWithMessages {
  process: ChildProcess
  send(order: VictimOrder): void
  on(listener: (message: VictimMessage) => void): void
}

// The memory store lives in one process: there is no other process to kill.
describe.each(STORE_KINDS.filter((kind) => kind !== 'memory'))(
  `%s: waiters killed and frozen at the head and in the middle of the queue, under ${WORKERS} processes`,
  (kind) => {
    let backend: Backend
    let scratch: string
    let counterFile: string
    let workerRecords: SectionRecord[] = []
    const victims: Victim[] = []
    const done: Array<{ step: Step; position: number }> = []

    beforeAll(async () => {
      backend = await prepareBackend(kind)
      scratch = await mkdtemp(join(tmpdir(), 'verrou-torture-'))
      counterFile = join(scratch, 'counter')
      await writeFile(counterFile, '0')
      const key = `dying-waiters:${Math.random().toString(36).slice(2)}`
      for (let index = 0; index < VICTIMS; index++) {
        victims.push(await spawnVictim(backend, key, counterFile, index))
      }
      // Holds of 5-15 ms: a victim at the head sees the lock held on several attempts in a row.
      const task: WorkerTask = {
        spec: backend.spec,
        key,
        sections: 1_000_000,
        runForMs: RUN_FOR_MS,
        ttl: 10_000,
        hold: { min: 5, max: 15 },
        counterFile,
        fenced: false,
        maxRetryDelay: 20,
      }
      let started: (stop: () => void) => void = () => {}
      const go = new Promise<() => void>((resolve) => {
        started = resolve
      })
      const run = runWorkers([task], WORKERS, 120_000, (_task, stop) => started(stop))
      // Signalling ends once the last dead place has expired under the running workers: then they stop.
      const signalling = go.then(async (stop) => {
        try {
          await signalVictims(victims, done)
        } finally {
          stop()
        }
      })
      const [results] = await Promise.all([run, signalling])
      workerRecords = results[0]!.records
      // Thawed victims rejoin at the tail and finish their section; killed ones are gone; spares that were
      // never used never joined the queue and are simply stopped.
      for (const victim of victims) if (!victim.started) victim.child.process.kill('SIGKILL')
      await Promise.race([
        Promise.all(victims.map((victim) => victim.finished)),
        sleep(30_000).then(() => {
          throw new Error('a victim did not finish within 30 s of the workers')
        }),
      ])
      tally('criticalSections', kind, workerRecords.length, 'dying waiters')
      tally('faultsInjected', kind, done.length, 'dying waiters')
    })

    afterAll(async () => {
      for (const victim of victims) {
        const child = victim.child.process
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGCONT')
          child.kill('SIGKILL')
        }
      }
      await backend?.dispose()
      if (scratch) await rm(scratch, { recursive: true, force: true })
    })

    test('each victim was killed or frozen where planned: at the head, then in the middle', () => {
      expect(done.map(({ step }) => step)).toEqual(STEPS)
      for (const { step, position } of done) expect(isAt(step.where, position), `${step.where}: position ${position}`).toBe(true)
    })

    test('the counter is exact and holder intervals never overlap, thawed victims included', async () => {
      const thawed = victims.flatMap((victim) => (victim.record ? [victim.record] : []))
      const records = [...workerRecords, ...thawed]
      expect(Number(await readFile(counterFile, 'utf8'))).toBe(records.length)
      expect(records.filter((record) => record.release !== 'released')).toEqual([])
      const frozen = done.filter(({ step }) => step.signal === 'SIGSTOP').length
      expect(thawed.length).toBeGreaterThanOrEqual(frozen)
      // Ordered by token, each holder starts only after the previous one ended: tokens increase in time.
      expect(exclusionBreaks(records)).toEqual([])
    })

    test(`no worker waited longer than a dead place's lease and a renewal (${WAIT_BOUND_MS} ms with slack)`, () => {
      const waits = workerRecords.map((record) => record.acquiredAt - record.requestedAt)
      const longest = Math.max(...waits)
      console.log(
        `${kind}: ${workerRecords.length} sections beside ${done.length} waiters killed or frozen; longest wait ${longest.toFixed(0)} ms`,
      )
      expect(workerRecords.length).toBeGreaterThan(WORKERS)
      expect(longest).toBeLessThanOrEqual(WAIT_BOUND_MS)
    })
  },
)

async function spawnVictim(backend: Backend, key: string, counterFile: string, index: number): Promise<Victim> {
  const child = fork(join(here, 'waiter_victim.ts'), [], {
    cwd: join(here, '..', '..'),
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const listeners: Array<(message: VictimMessage) => void> = []
  child.on('message', (message: VictimMessage) => {
    for (const listener of listeners) listener(message)
  })
  const proc: ProcessWithMessages = {
    process: child,
    send: (order) => void child.send(order),
    on: (listener) => void listeners.push(listener),
  }
  const victim: Victim = { child: proc, started: false, finished: new Promise((resolve) => child.on('exit', () => resolve())) }
  const ready = new Promise<void>((resolve, reject) => {
    proc.on((message) => {
      if (message.type === 'ready') resolve()
      if (message.type === 'failed') reject(new Error(`victim ${index} failed: ${message.error}`))
    })
    child.on('exit', (code) => reject(new Error(`victim ${index} exited (${code}) before it was ready`)))
  })
  proc.on((message) => {
    if (message.type === 'section') victim.record = message.record
  })
  const owner = `victim-${index}-${Math.random().toString(36).slice(2)}`
  proc.send({ type: 'setup', spec: backend.spec, key, owner, ttl: 10_000, placeLease: PLACE_LEASE_MS, counterFile })
  await ready
  return victim
}

/**
 * Steps one after another: a victim starts waiting, and the moment it reports the planned place it gets
 * the signal. The next step waits until the last dead place has expired, so dead places never stack.
 */
async function signalVictims(victims: Victim[], done: Array<{ step: Step; position: number }>): Promise<void> {
  const spares = [...victims]
  for (const step of STEPS) {
    for (;;) {
      const victim = spares.shift()
      if (victim === undefined) throw new Error(`no victim left to signal at the ${step.where}`)
      const position = await waitUntilAt(victim, step.where)
      if (position === undefined) continue // it got the lock first: try the next one
      victim.child.process.kill(step.signal)
      victim.signalledAt = { step, position }
      done.push({ step, position })
      if (step.signal === 'SIGSTOP') {
        setTimeout(() => {
          victim.child.process.kill('SIGCONT')
          victim.child.send({ type: 'next' })
        }, FROZEN_MS)
      }
      await sleep(PLACE_LEASE_MS + 300)
      break
    }
  }
}

/** Lets the victim attempt until it reports `where`; its position then, or undefined if it got the lock. */
function waitUntilAt(victim: Victim, where: Where): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    let settled = false
    victim.child.on((message) => {
      if (message.type === 'position') {
        // Once signalled (a thawed victim), it just keeps attempting.
        if (!settled && isAt(where, message.position)) {
          settled = true
          resolve(message.position)
        } else victim.child.send({ type: 'next' })
      } else if (message.type === 'section' && !settled) {
        settled = true
        resolve(undefined)
      } else if (message.type === 'failed' && !settled) {
        settled = true
        reject(new Error(message.error))
      }
    })
    victim.started = true
    victim.child.send({ type: 'next' })
  })
}
