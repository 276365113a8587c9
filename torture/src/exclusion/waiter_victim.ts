/**
 * A waiter that the dying-waiters test kills or freezes (SIGKILL / SIGSTOP) while it stands in the queue.
 * It talks to the store directly, as a Lock does while it waits (an attempt with a place lease, renewed on
 * every attempt), but reports its place after every refused attempt and makes the next one only when the
 * test says so: the test then knows exactly where in the queue the signal lands. If it gets the lock (a
 * frozen waiter that was thawed), it runs the same unprotected counter section as the workers.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { openStore } from '../backends/stores.js'
import { now } from './sections.js'
import type { VictimMessage, VictimOrder } from './victim_protocol.js'

const send = (message: VictimMessage) => process.send?.(message)
let proceed: () => void = () => {}

process.on('message', (message: VictimOrder) => {
  if (message.type === 'setup') {
    void openStore(message.spec).then(async ({ store, close }) => {
      await store.isLocked(message.key)
      send({ type: 'ready' })
      await new Promise<void>((resolve) => {
        proceed = resolve
      })
      await wait(store, message, close)
    }, fail)
  } else if (message.type === 'next') {
    proceed()
  }
})

async function wait(
  store: Awaited<ReturnType<typeof openStore>>['store'],
  { key, owner, ttl, placeLease, counterFile }: Extract<VictimOrder, { type: 'setup' }>,
  close: () => Promise<void>,
): Promise<void> {
  const requestedAt = now()
  for (;;) {
    const reply = await store.acquire(key, owner, ttl, { lease: placeLease })
    if (reply.acquired) {
      const acquiredAt = now()
      const value = Number(await readFile(counterFile, 'utf8'))
      await writeFile(counterFile, String(value + 1))
      const endedAt = now()
      const released = await store.release(key, owner)
      send({
        type: 'section',
        record: {
          pid: process.pid,
          mode: 'mutex',
          token: reply.fencingToken,
          requestedAt,
          acquiredAt,
          endedAt,
          stalled: false,
          release: released ? 'released' : 'not-owned',
        },
      })
      await close()
      process.disconnect?.()
      return
    }
    const next = new Promise<void>((resolve) => {
      proceed = resolve
    })
    send({ type: 'position', position: reply.position ?? -1 })
    await next
  }
}

function fail(error: unknown): void {
  send({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) })
  process.disconnect?.()
}
