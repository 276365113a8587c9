import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { LockFactory } from '@verrou/core'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createClient, createPool, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

const tableName = uniqueTableName('verrou_notify')
const listenQuery = `LISTEN "verrou:${tableName}"`
// Two pools for two "processes": the holder's and the waiter's.
const holderPool = createPool()
const waiterPool = createPool()
const holderStore = new PostgresStore({ connection: holderPool, tableName })
const waiterStore = new PostgresStore({ connection: waiterPool, tableName })
const holders = new LockFactory(holderStore)
const waiters = new LockFactory(waiterStore)
let admin: pg.Client

beforeAll(async () => {
  admin = await createClient()
})

afterAll(async () => {
  await holderStore.close()
  await waiterStore.close()
  await dropTable(admin, tableName)
  await admin.end()
  await holderPool.end()
  await waiterPool.end()
})

/** Pids of the sessions listening on this test's channel. */
async function listeners(): Promise<number[]> {
  const { rows } = await admin.query('SELECT pid FROM pg_stat_activity WHERE query = $1 ORDER BY pid', [listenQuery])
  return rows.map((row: { pid: number }) => row.pid)
}

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let tries = 0; tries < 300; tries++) {
    if (await condition()) return
    await sleep(10)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Starts a waiter with a long retry delay and resolves once it sleeps on a live subscription. */
async function startWaiter(key: string, delay: number) {
  const lock = waiters.createLock(key, 60_000)
  const acquired = lock.acquire({ retry: { delay, timeout: 20_000 } })
  await waitFor(async () => (await listeners()).length > 0, 'the waiter to listen')
  // It retries once right after subscribing; give that attempt time to fail and the waiter to sleep.
  await sleep(150)
  return { lock, acquired }
}

describe('release notifications', () => {
  test('a waiter on another store gets the lock right after a release, despite a 5 s retry delay', async () => {
    const key = uniqueKey()
    const holder = holders.createLock(key, 60_000)
    expect(await holder.acquireImmediately()).toBe(true)
    const waiter = await startWaiter(key, 5000)

    const releasedAt = performance.now()
    await holder.release()
    expect(await waiter.acquired).toBe(true)
    const latency = performance.now() - releasedAt
    expect(latency).toBeLessThan(500)
    await waiter.lock.release()
  })

  test('a force release wakes the waiter too', async () => {
    const key = uniqueKey()
    expect(await holders.createLock(key, 60_000).acquireImmediately()).toBe(true)
    const waiter = await startWaiter(key, 5000)
    const releasedAt = performance.now()
    await holders.createLock(key).forceRelease()
    expect(await waiter.acquired).toBe(true)
    expect(performance.now() - releasedAt).toBeLessThan(500)
    await waiter.lock.release()
  })

  test('a lost notification (listening session killed) still lets the waiter in within its retry delay; then it listens again', async () => {
    const key = uniqueKey()
    const holder = holders.createLock(key, 60_000)
    expect(await holder.acquireImmediately()).toBe(true)
    const waiter = await startWaiter(key, 1000)
    const [killed] = await listeners()
    const killedAt = performance.now()
    await admin.query('SELECT pg_terminate_backend($1)', [killed])
    await holder.release()
    const releasedAt = performance.now()
    expect(await waiter.acquired).toBe(true)
    expect(performance.now() - releasedAt).toBeLessThan(1500)

    // The store reopened its listening session on its own, so the next wait is short again.
    await waitFor(async () => {
      const pids = await listeners()
      return pids.length === 1 && pids[0] !== killed
    }, 'a new listening session')
    // The new session vouches only from its own LISTEN on: what came while none listened may be lost.
    const fresh = await waiterStore.subscribeToReleases!(uniqueKey(), () => {})
    expect(fresh.heardSince).toBeGreaterThanOrEqual(killedAt)
    await fresh()
    const next = await startWaiter(key, 5000)
    const releasedAgainAt = performance.now()
    await waiter.lock.release()
    expect(await next.acquired).toBe(true)
    expect(performance.now() - releasedAgainAt).toBeLessThan(500)
    await next.lock.release()
  })

  test('notifications reach the listeners of their own key only, for long and NUL-bearing keys too, naming the waiter', async () => {
    const prefix = uniqueKey()
    const keys = [`${prefix}:a`, `${prefix}:A`, `${prefix}:${'x'.repeat(9000)}`, `${prefix}:\0nul`, `${prefix}:\uD800`]
    // Waiters' owners as odd as the keys: each is named back exactly.
    const waiterOf = (i: number) => [`w-a`, `w-A`, `w-${'y'.repeat(2000)}`, `w-\0nul`, `w-\uDC00-🔑`][i]!
    const heard = new Map<string, (string | undefined)[]>(keys.map((key) => [key, []]))
    const unsubscribes = await Promise.all(
      keys.map((key) => waiterStore.subscribeToReleases!(key, (next) => heard.get(key)!.push(next))),
    )
    for (const [i, key] of keys.entries()) {
      await holderStore.acquire(key, 'owner', 60_000)
      // A queueing store announces a release only to a waiter: every key gets one.
      expect((await waiterStore.acquire(key, waiterOf(i), 60_000, { lease: 60_000 })).acquired).toBe(false)
    }

    await holderStore.release(keys[0]!, 'owner')
    await holderStore.release(keys[2]!, 'not-the-owner') // refused: nothing to announce
    await holderStore.forceRelease(keys[3]!)
    await holderStore.release(keys[4]!, 'owner')
    await waitFor(async () => heard.get(keys[4]!)!.length === 1, 'the last notification')
    expect([...heard.values()]).toEqual([[waiterOf(0)], [], [], [waiterOf(3)], [waiterOf(4)]])

    for (const unsubscribe of unsubscribes) await unsubscribe()
    await holderStore.release(keys[2]!, 'owner')
    await sleep(100)
    expect(heard.get(keys[2]!)).toEqual([])
    for (const [i, key] of keys.entries()) await waiterStore.leaveQueue(key, waiterOf(i))
  })

  test('once the session listens, a subscription reports since when it hears (the conformance suite checks the replay)', async () => {
    const offWarm = await waiterStore.subscribeToReleases!(uniqueKey(), () => {})
    const listening = performance.now()
    const off = await waiterStore.subscribeToReleases!(uniqueKey(), () => {})
    expect(off.heardSince).toBeLessThanOrEqual(listening)
    await off()
    await offWarm()
  })

  test('one listening session per store, however many keys; close() ends it and leaves the pool alone', async () => {
    const store = new PostgresStore({ connection: waiterPool, tableName: uniqueTableName('verrou_close') })
    const channelQuery = `LISTEN "verrou:${(store as PostgresStore).tableName}"`
    const count = async () =>
      (await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1', [channelQuery])).rows[0].n
    await Promise.all(Array.from({ length: 20 }, () => store.subscribeToReleases!(uniqueKey(), () => undefined)))
    expect(await count()).toBe(1)
    await store.close()
    await waitFor(async () => (await count()) === 0, 'the listening session to end')
    expect((await waiterPool.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }])
    await expect(store.subscribeToReleases!(uniqueKey(), () => undefined)).rejects.toThrow()
  })

  test('a store on a single Client listens on a session of its own, opened with the same settings', async () => {
    const client = await createClient()
    const store = new PostgresStore({ connection: client, tableName })
    try {
      const key = uniqueKey()
      const heard: (string | undefined)[] = []
      await store.subscribeToReleases!(key, (next) => heard.push(next))
      await holderStore.acquire(key, 'owner', 60_000)
      // Queued through this store, so told on this store's inbox.
      await store.acquire(key, 'waiter', 60_000, { lease: 60_000 })
      await holderStore.release(key, 'owner')
      await waitFor(async () => heard.length === 1, 'the notification')
      expect(heard).toEqual(['waiter'])
      await store.leaveQueue(key, 'waiter')
    } finally {
      await store.close()
      await client.end()
    }
  })

  test('a release wakes only the store that queued the next waiter, not every store listening on the table', async () => {
    const key = uniqueKey()
    const bystanderPool = createPool()
    const bystander = new PostgresStore({ connection: bystanderPool, tableName })
    try {
      const heard = { waiter: [] as (string | undefined)[], bystander: [] as (string | undefined)[] }
      const offs = [
        await waiterStore.subscribeToReleases!(key, (next) => heard.waiter.push(next)),
        await bystander.subscribeToReleases!(key, (next) => heard.bystander.push(next)),
      ]
      await holderStore.acquire(key, 'owner', 60_000)
      await waiterStore.acquire(key, 'waiter', 60_000, { lease: 60_000 })
      // Each place records the inbox of the store that queued it.
      const { rows } = await admin.query(`SELECT waiter_inboxes FROM "${tableName}" WHERE key = convert_to($1, 'UTF8')`, [key])
      expect(rows[0]?.waiter_inboxes).toEqual([expect.stringMatching(/^verrou_heir_[0-9a-f]{32}$/)])
      // The release hands the lock to the waiter; forcing it free again (before the waiter claimed it)
      // tells the waiter, still first in line, once more. Nobody else hears either.
      await holderStore.release(key, 'owner')
      await waitFor(async () => heard.waiter.length === 1, 'the notification')
      await holderStore.forceRelease(key)
      await waitFor(async () => heard.waiter.length === 2, 'the second notification')
      await sleep(100)
      expect(heard).toEqual({ waiter: ['waiter', 'waiter'], bystander: [] })
      await waiterStore.leaveQueue(key, 'waiter')
      for (const off of offs) await off()
    } finally {
      await bystander.close()
      await bystanderPool.end()
    }
  })

  test('the listening session never keeps the process alive, even if close() is forgotten', async () => {
    const script = fileURLToPath(new URL('../test/forgotten_close.ts', import.meta.url))
    const started = performance.now()
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', script], { timeout: 15_000 }, (error, out) =>
        error ? reject(error) : resolve(out),
      )
    })
    expect(stdout).toBe('subscribed\n')
    // Node alone takes about a second to start tsx; a held socket would keep it running until the timeout.
    expect(performance.now() - started).toBeLessThan(10_000)
  })

  test('the listening session takes no slot of the pool: pool.end() finishes while the store still listens', async () => {
    const pool = createPool({ max: 1 })
    const store = new PostgresStore({ connection: pool, tableName })
    try {
      await store.subscribeToReleases!(uniqueKey(), () => undefined)
      // With max: 1, a listener taken from the pool would leave nothing for this query.
      expect((await pool.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }])
      const ended = pool.end().then(() => 'ended')
      expect(await Promise.race([ended, sleep(2000).then(() => 'still waiting')])).toBe('ended')
    } finally {
      await store.close()
    }
  })
})
