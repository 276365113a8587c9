import type { SharedLockStore, SharedMode } from '@verrou/core'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createClient, createPool, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

/**
 * Announcements of shared locks: after holders end or a place leaves or dies, one NOTIFY per waiter the grant
 * rule now admits, naming it, in queue order, stopping at the first it does not admit; nothing when nobody
 * waits. A listening store and an acting store on separate pools, as two processes.
 */
const tableName = uniqueTableName('verrou_shared_notify')
const listenerPool = createPool()
const actorPool = createPool()
const listening = new PostgresStore({ connection: listenerPool, tableName, pruneInterval: false })
const acting = new PostgresStore({ connection: actorPool, tableName, pruneInterval: false })
const shared = acting.shared as SharedLockStore
let admin: pg.Client

const READ: SharedMode = { exclusive: false, limit: null }
const WRITE: SharedMode = { exclusive: true, limit: null }
const permits = (limit: number): SharedMode => ({ exclusive: false, limit })
const PLACE = { lease: 10_000 }
/** How long a test waits for notifications that must (not) arrive: NOTIFY is delivered within milliseconds. */
const SETTLE_MS = 150

beforeAll(async () => {
  admin = await createClient()
})

afterAll(async () => {
  await listening.close()
  await acting.close()
  await dropTable(admin, tableName)
  await admin.end()
  await listenerPool.end()
  await actorPool.end()
})

/** Subscribes to `key`'s shared announcements; `take()` waits a moment and returns the names heard since. */
async function hear(key: string) {
  let heard: (string | undefined)[] = []
  const unsubscribe = await listening.shared!.subscribeToReleases!(key, (next) => heard.push(next))
  return {
    async take() {
      await sleep(SETTLE_MS)
      const names = heard
      heard = []
      return names
    },
    unsubscribe,
  }
}

async function waitIn(key: string, owner: string, mode: SharedMode, position: number) {
  expect(await shared.acquire(key, owner, mode, 60_000, PLACE)).toMatchObject({ acquired: false, position })
}

describe('shared lock announcements', () => {
  test('nothing is announced when nobody waits', async () => {
    const key = uniqueKey()
    const ears = await hear(key)
    await shared.acquire(key, 'r', READ, 60_000)
    await shared.release(key, 'r', READ)
    await shared.acquire(key, 'w', WRITE, 60_000)
    await shared.forceRelease(key, WRITE)
    await shared.leaveQueue(key, 'nobody')
    expect(await ears.take()).toEqual([])
  })

  test('a writer leaving names the readers queued up to the next writer, and no one after it', async () => {
    const key = uniqueKey()
    const ears = await hear(key)
    await shared.acquire(key, 'w1', WRITE, 60_000)
    await waitIn(key, 'r1', READ, 0)
    await waitIn(key, 'r2', READ, 1)
    await waitIn(key, 'w2', WRITE, 2)
    await waitIn(key, 'r3', READ, 3)
    expect(await ears.take()).toEqual([])
    expect(await shared.release(key, 'w1', WRITE)).toBe(true)
    expect(await ears.take()).toEqual(['r1', 'r2'])
    // They take it; the writer is admitted only when the last reader is gone.
    await shared.acquire(key, 'r1', READ, 60_000, PLACE)
    await shared.acquire(key, 'r2', READ, 60_000, PLACE)
    await shared.release(key, 'r1', READ)
    expect(await ears.take()).toEqual([])
    await shared.release(key, 'r2', READ)
    expect(await ears.take()).toEqual(['w2'])
  })

  test('permits: each freed permit admits as many waiters as the limit leaves room for', async () => {
    const key = uniqueKey()
    const ears = await hear(key)
    await shared.acquire(key, 'a', permits(2), 60_000)
    await shared.acquire(key, 'b', permits(2), 60_000)
    await waitIn(key, 'p1', permits(2), 0)
    await waitIn(key, 'p2', permits(2), 1)
    await waitIn(key, 'p3', permits(2), 2)
    await shared.release(key, 'a', permits(2))
    expect(await ears.take()).toEqual(['p1'])
    // Every permit forced out: room for two.
    await shared.forceRelease(key, permits(2))
    expect(await ears.take()).toEqual(['p1', 'p2'])
  })

  test('leaveQueue by a waiting writer names the readers it held up', async () => {
    const key = uniqueKey()
    const ears = await hear(key)
    await shared.acquire(key, 'r0', READ, 60_000)
    await waitIn(key, 'w', WRITE, 0)
    await waitIn(key, 'r1', READ, 1)
    await waitIn(key, 'r2', READ, 2)
    await shared.leaveQueue(key, 'w')
    expect(await ears.take()).toEqual(['r1', 'r2'])
    // Leaving again changes nothing and says nothing.
    await shared.leaveQueue(key, 'w')
    expect(await ears.take()).toEqual([])
  })

  test('a dead place found by the next call is announced like a departure', async () => {
    const key = uniqueKey()
    const ears = await hear(key)
    await shared.acquire(key, 'r0', READ, 60_000)
    expect(await shared.acquire(key, 'w', WRITE, 60_000, { lease: 150 })).toMatchObject({ position: 0 })
    await waitIn(key, 'r1', READ, 1)
    await sleep(250)
    // A read finds it dead but writes nothing and says nothing.
    expect(await shared.isLocked(key, WRITE)).toBe(true)
    expect(await ears.take()).toEqual([])
    // The next call that locks the row drops it and names the reader it held up.
    expect(await shared.release(key, 'nobody', READ)).toBe(false)
    expect(await ears.take()).toEqual(['r1'])
  })

  test('an expired holder found by the next call is announced like a release', async () => {
    const key = uniqueKey()
    const ears = await hear(key)
    await shared.acquire(key, 'crashed', WRITE, 150)
    await waitIn(key, 'w', WRITE, 0)
    await sleep(250)
    await shared.leaveQueue(key, 'nobody')
    expect(await ears.take()).toEqual(['w'])
  })

  test('owners come back exactly; mutex subscribers of the same key hear nothing', async () => {
    const key = uniqueKey()
    const ears = await hear(key)
    const mutexHeard: (string | undefined)[] = []
    const unsubscribeMutex = await listening.subscribeToReleases!(key, (next) => mutexHeard.push(next))
    const odd = 'r\n\u0000🔒\uD800'
    await shared.acquire(key, 'w', WRITE, 60_000)
    await waitIn(key, odd, READ, 0)
    await shared.forceRelease(key, WRITE)
    expect(await ears.take()).toEqual([odd])
    expect(mutexHeard).toEqual([])
    await unsubscribeMutex()
    await ears.unsubscribe()
  })

  test('the payload on the table channel: the key marked as shared, a newline, the owner in hex', async () => {
    const key = uniqueKey()
    const payloads: string[] = []
    const raw = await createClient()
    raw.on('notification', (message) => payloads.push(message.payload ?? ''))
    await raw.query(`LISTEN "verrou:${tableName}"`)
    try {
      await shared.acquire(key, 'w', WRITE, 60_000)
      await waitIn(key, 'r', READ, 0)
      await shared.release(key, 'w', WRITE)
      await sleep(SETTLE_MS)
      expect(payloads).toEqual([`sk:${key}\nx:${Buffer.from('r').toString('hex')}`])
    } finally {
      await raw.end()
    }
  })
})
