import { type ChildProcess, fork } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { SharedSettings } from './backends/backend.js'
import {
  type ContentionRound,
  type ContentionSettings,
  FINISH_TIMEOUT_MS,
  type Hold,
  summarise,
  withTimeout,
} from './contention.js'
import { type FromWorker, sharedNow, type ToWorker } from './process_protocol.js'
import { newCounters, type StoreId, type Subject } from './subject.js'

/** A subject the workers can rebuild in their own processes. */
export interface ProcessSubject {
  subject: Subject
  store: StoreId
  runId: string
  shared: SharedSettings
}

/** Time for every worker to start, connect and warm up before the window opens. */
const SETUP_TIMEOUT_MS = 60_000
/** How long the workers contend on the window's key before the window opens. */
const WARM_UP_MS = 300
/** Between the go and the window opening, so that every worker starts on the same tick. */
const GO_MARGIN_MS = 200

const workerFile = fileURLToPath(new URL('./contention_worker.ts', import.meta.url))
// The workers run the TypeScript sources as the bench does, through tsx's loader (an absolute URL, so that
// resolving it does not depend on the working directory).
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href

/**
 * The contention scenario with one OS process per worker, as `settings.workers` processes of an
 * application would run: no shared event loop hides a herd or favours the releaser. Holds are timed on the
 * clock every process shares, then summarised exactly like the in-process scenario.
 */
export async function runProcessContention(
  { subject, store, runId, shared }: ProcessSubject,
  key: string,
  settings: ContentionSettings,
): Promise<ContentionRound> {
  const children: ChildProcess[] = []
  try {
    const workers = Array.from({ length: settings.workers }, (_, worker) => {
      const child = fork(workerFile, [], { execArgv: ['--import', tsxLoader], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      children.push(child)
      return { child, next: messages(child, subject.id, worker) }
    })
    await withTimeout(
      Promise.all(
        workers.map(async ({ child, next }, worker) => {
          order(child, { type: 'setup', store, runId, shared, subjectId: subject.id, worker, key })
          await expect(next, 'ready')
        }),
      ),
      SETUP_TIMEOUT_MS,
      `${subject.id}: the worker processes were not ready within ${SETUP_TIMEOUT_MS} ms`,
    )
    // Every worker waits a few times before the window opens, all together on the window's key: the first
    // wait of a process opens its listener, subscribes to the key and prepares the queue statements, which
    // on a busy machine costs more than a hand-over (and an attempt, for a release that may have come
    // while subscribing). A process that waits on a key again within seconds finds all of that in place:
    // the window measures that steady state. All holds are over before it opens, so it starts free.
    const warmUntil = sharedNow() + GO_MARGIN_MS + WARM_UP_MS
    await withTimeout(
      Promise.all(
        workers.map(async ({ child, next }) => {
          order(child, { type: 'warm', deadline: warmUntil, holdMs: settings.holdMs })
          await expect(next, 'warmed')
        }),
      ),
      GO_MARGIN_MS + WARM_UP_MS + FINISH_TIMEOUT_MS,
      `${subject.id}: the worker processes did not finish warming up within ${FINISH_TIMEOUT_MS} ms`,
    )
    const deadline = sharedNow() + GO_MARGIN_MS + settings.durationMs
    const done = workers.map(async ({ child, next }) => {
      order(child, { type: 'go', deadline, holdMs: settings.holdMs })
      return expect(next, 'done')
    })
    const reports = await withTimeout(
      Promise.all(done),
      GO_MARGIN_MS + settings.durationMs + FINISH_TIMEOUT_MS,
      `${subject.id}: the worker processes did not finish within ${FINISH_TIMEOUT_MS} ms of the window closing`,
    )
    // Only now may a worker close its connections and exit: a process tearing down while another still
    // waits would slow that wait down, and the last waits of the window are measured too.
    await withTimeout(
      Promise.all(
        workers.map(async ({ child, next }) => {
          order(child, { type: 'close' })
          await expect(next, 'closed')
        }),
      ),
      FINISH_TIMEOUT_MS,
      `${subject.id}: the worker processes did not close within ${FINISH_TIMEOUT_MS} ms`,
    )
    const counters = newCounters()
    const holds: Hold[] = []
    for (const report of reports) {
      holds.push(...report.holds)
      counters.roundTrips += report.counters.roundTrips
      counters.gaveUp += report.counters.gaveUp
    }
    return summarise(holds, deadline, settings.workers, counters)
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

function order(child: ChildProcess, message: ToWorker): void {
  child.send(message)
}

/** Hands out the worker's messages one at a time; a worker that dies or fails rejects the next one. */
function messages(child: ChildProcess, id: string, worker: number): () => Promise<FromWorker> {
  const queue: FromWorker[] = []
  const waiting: Array<{ resolve: (message: FromWorker) => void; reject: (error: Error) => void }> = []
  let ended: Error | undefined
  child.on('message', (message: FromWorker) => {
    const taker = waiting.shift()
    if (taker) taker.resolve(message)
    else queue.push(message)
  })
  child.on('exit', (code, signal) => {
    ended = new Error(`${id}: worker ${worker} exited (${signal ?? `code ${code}`}) before reporting`)
    for (const taker of waiting.splice(0)) taker.reject(ended)
  })
  return () => {
    const message = queue.shift()
    if (message !== undefined) return Promise.resolve(message)
    if (ended !== undefined) return Promise.reject(ended)
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }))
  }
}

async function expect<T extends FromWorker['type']>(
  next: () => Promise<FromWorker>,
  type: T,
): Promise<Extract<FromWorker, { type: T }>> {
  const message = await next()
  if (message.type === 'failed') throw new Error(message.error)
  if (message.type !== type) throw new Error(`a worker sent "${message.type}" where "${type}" was expected`)
  return message as Extract<FromWorker, { type: T }>
}
