import { type ChildProcess, fork } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FenceReply, ParentMessage, SectionRecord, WorkerMessage, WorkerTask } from './protocol.js'
import { runSections, type WorkerLink } from './sections.js'

const here = dirname(fileURLToPath(import.meta.url))
const tortureRoot = join(here, '..', '..')

/**
 * The resource the expiry variant protects: it accepts a read or write only with a fencing token at least
 * the highest it has seen. Lives in the test process, so each request is checked and applied atomically.
 */
export class FencedCounter {
  highest = 0
  value = 0
  acceptedWrites = 0
  rejected = 0

  handle(op: 'read' | 'write', token: number, value?: number): Omit<FenceReply, 'type' | 'id'> {
    if (token < this.highest) {
      this.rejected++
      return { accepted: false, value: this.value }
    }
    this.highest = token
    if (op === 'write') {
      this.value = value!
      this.acceptedWrites++
    }
    return { accepted: true, value: this.value }
  }
}

export interface TaskResult {
  records: SectionRecord[]
  counter: FencedCounter
  /**
   * Ms from spawning to every worker being connected (first task only: later ones reuse the processes), and
   * from "go" to every worker being ready for the next task (or done).
   */
  startupMs: number
  runMs: number
}

/**
 * Runs `tasks` one after another in `workers` OS processes (each with its own connections); a task starts
 * when every worker is connected for it. The memory store lives in one process, so for it the workers are
 * concurrent async loops in this one.
 */
export async function runWorkers(
  tasks: WorkerTask[],
  workers: number,
  timeoutMs: number,
  /**
   * Told when every worker has been sent the go for `task` (worker processes only), with `stop`, which
   * tells every worker to start no new section of it.
   */
  onGo: (task: number, stop: () => void) => void = () => {},
): Promise<TaskResult[]> {
  const results = tasks.map(() => ({ records: [], counter: new FencedCounter(), startupMs: 0, runMs: 0 }) as TaskResult)
  if (tasks[0]?.spec.kind === 'memory') {
    for (const [index, task] of tasks.entries()) {
      const started = performance.now()
      results[index]!.records = await runInProcess(task, workers, results[index]!.counter)
      results[index]!.runMs = performance.now() - started
    }
    return results
  }
  const children: ChildProcess[] = []
  const readyCount = tasks.map(() => 0)
  const spawnedAt = performance.now()
  const goAt: number[] = []
  try {
    const perWorker = await new Promise<SectionRecord[][][]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`workers did not finish within ${timeoutMs} ms`)), timeoutMs)
      const done: SectionRecord[][][] = []
      const fail = (error: Error) => {
        clearTimeout(timer)
        reject(error)
      }
      for (let index = 0; index < workers; index++) {
        const child = fork(join(here, 'worker.ts'), [], {
          cwd: tortureRoot,
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
        children.push(child)
        const post = (message: ParentMessage) => child.send(message)
        child.on('message', (message: WorkerMessage) => {
          switch (message.type) {
            case 'ready': {
              readyCount[message.task]!++
              if (readyCount[message.task] === workers) {
                goAt[message.task] = performance.now()
                for (const each of children) each.send({ type: 'go', task: message.task } satisfies ParentMessage)
                const task = message.task
                onGo(task, () => {
                  for (const each of children) if (each.connected) each.send({ type: 'stop', task } satisfies ParentMessage)
                })
              }
              break
            }
            case 'fence': {
              const reply = results[message.task]!.counter.handle(message.op, message.token, message.value)
              post({ type: 'fence-reply', id: message.id, ...reply })
              break
            }
            case 'done':
              done.push(message.results)
              if (done.length === workers) {
                clearTimeout(timer)
                resolve(done)
              }
              break
            case 'failed':
              fail(new Error(`worker ${child.pid} failed: ${message.error}`))
              break
          }
        })
        child.on('exit', (code, signal) => {
          if (code !== 0 && done.length < workers) fail(new Error(`worker ${child.pid} exited with ${code ?? signal}`))
        })
        child.on('error', fail)
        post({ type: 'tasks', tasks })
      }
    })
    for (const [index, result] of results.entries()) {
      result.records = perWorker.flatMap((worker) => worker[index] ?? [])
    }
    const finishedAt = performance.now()
    results[0]!.startupMs = goAt[0]! - spawnedAt
    for (const [index, result] of results.entries()) result.runMs = (goAt[index + 1] ?? finishedAt) - goAt[index]!
    return results
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

async function runInProcess(task: WorkerTask, workers: number, counter: FencedCounter): Promise<SectionRecord[]> {
  let ready = 0
  let go: () => void = () => {}
  const started = new Promise<void>((resolve) => {
    go = resolve
  })
  const link: WorkerLink = {
    ready: () => {
      ready++
      if (ready === workers) go()
    },
    started,
    stopped: () => false,
    fence: async (op, token, value) => {
      // A macrotask hop, like IPC, so other workers interleave here too.
      await new Promise((resolve) => setImmediate(resolve))
      return { type: 'fence-reply', id: 0, ...counter.handle(op, token, value) }
    },
  }
  const all = await Promise.all(Array.from({ length: workers }, (_, index) => runSections(task, link, index + 1)))
  return all.flat()
}
