/**
 * A worker process of the exclusion test: receives its tasks over IPC and runs them in order, each one
 * on its own store connection and only once the parent says every worker is ready for it.
 */
import type { FenceReply, ParentMessage, SectionRecord, WorkerMessage, WorkerTask } from './protocol.js'
import { runSections, type WorkerLink } from './sections.js'

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send?.(message, undefined, {}, (error) => (error ? reject(error) : resolve()))
  })
}

const pendingFence = new Map<number, (reply: FenceReply) => void>()
let nextFenceId = 0
const starters = new Map<number, () => void>()
const stopped = new Set<number>()

function linkFor(task: number): WorkerLink {
  return {
    ready: () => void send({ type: 'ready', task }),
    started: new Promise<void>((resolve) => starters.set(task, resolve)),
    stopped: () => stopped.has(task),
    fence: (op, token, value) =>
      new Promise<FenceReply>((resolve) => {
        const id = nextFenceId++
        pendingFence.set(id, resolve)
        void send({ type: 'fence', task, id, op, token, value })
      }),
  }
}

async function runAll(tasks: WorkerTask[]): Promise<SectionRecord[][]> {
  const results: SectionRecord[][] = []
  for (const [index, task] of tasks.entries()) results.push(await runSections(task, linkFor(index), process.pid))
  return results
}

process.on('message', (message: ParentMessage) => {
  if (message.type === 'tasks') {
    runAll(message.tasks)
      .then(
        (results) => send({ type: 'done', results }),
        (error: unknown) =>
          send({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      )
      .finally(() => process.disconnect?.())
  } else if (message.type === 'go') {
    starters.get(message.task)?.()
  } else if (message.type === 'stop') {
    stopped.add(message.task)
  } else if (message.type === 'fence-reply') {
    pendingFence.get(message.id)?.(message)
    pendingFence.delete(message.id)
  }
})
