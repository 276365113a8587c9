// One contention worker in a process of its own: started by `process_contention.ts` with `fork`.
import { BACKENDS } from './backends/index.js'
import { counterKey, runHolds } from './contention.js'
import { warmUp } from './cycles.js'
import { type FromWorker, sharedNow, type ToWorker } from './process_protocol.js'
import { type LockClient, newCounters } from './subject.js'

const send = (message: FromWorker) => process.send?.(message)
const counters = newCounters()
let client: LockClient | undefined
let key = ''
let worker = 0

process.on('message', (message: ToWorker) => {
  const step =
    message.type === 'setup'
      ? setUp(message)
      : message.type === 'warm'
        ? warm(message.deadline, message.holdMs)
        : message.type === 'go'
          ? work(message.deadline, message.holdMs)
          : close()
  step.catch((error: unknown) => {
    send({ type: 'failed', error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) })
    process.exitCode = 1
    process.disconnect?.()
  })
})

async function setUp(order: Extract<ToWorker, { type: 'setup' }>): Promise<void> {
  const backend = BACKENDS[order.store]
  if (backend.attach === undefined) throw new Error(`${order.store} cannot be measured across processes`)
  const subject = backend.attach({ runId: order.runId }, order.shared).find((each) => each.id === order.subjectId)
  if (subject === undefined) throw new Error(`no subject ${order.subjectId} on ${order.store}`)
  client = await subject.connect(counters, { timeAttempts: true })
  key = order.key
  worker = order.worker
  // Connections, tables and scripts are ready before the window opens.
  await warmUp(client, counterKey(`${key}:warm:${worker}`), 2)
  Object.assign(counters, newCounters())
  send({ type: 'ready' })
}

async function warm(deadline: number, holdMs: number): Promise<void> {
  if (client === undefined) throw new Error('told to warm up before setup')
  await runHolds(client, key, worker, holdMs, deadline, sharedNow)
  Object.assign(counters, newCounters())
  send({ type: 'warmed' })
}

async function work(deadline: number, holdMs: number): Promise<void> {
  if (client === undefined) throw new Error('told to start before setup')
  const holds = await runHolds(client, key, worker, holdMs, deadline, sharedNow)
  send({ type: 'done', holds, counters })
}

async function close(): Promise<void> {
  await client?.close()
  send({ type: 'closed' })
  process.disconnect?.()
}
