import { type AcquireResult, LockFactory } from '@verrou/core'
import type pg from 'pg'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { createClient, createPool, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { buildStatements } from './sql.js'
import { PostgresStore } from './store.js'
import { resolveTableNames } from './table_name.js'
import { releasePayload, toStoredBytes } from './text_bytes.js'

/**
 * A release hands the lock straight to the first live waiter of a listening store (the heir), against the
 * real server. Each "process" is a store on a pool of its own; a store that never subscribed does not
 * listen, so a hand-over to its waiter goes unheard.
 */
const tableName = uniqueTableName('verrou_heir')
let admin: pg.Client
const pools: pg.Pool[] = []
const stores: PostgresStore[] = []

beforeAll(async () => {
  admin = await createClient()
})

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()))
  await Promise.all(pools.map((pool) => pool.end()))
  await dropTable(admin, tableName)
  await admin.end()
})

/** A store on a pool of its own, with every statement name (or text) it sends recorded in `sent`. */
function processStore(options: { listen?: boolean } = {}) {
  const pool = createPool({ max: 4 })
  const sent: string[] = []
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown
  ;(pool as unknown as { query: (...args: unknown[]) => unknown }).query = (config: unknown, ...rest: unknown[]) => {
    const named = config as { name?: string; text?: string }
    sent.push(named.name ?? named.text ?? String(config))
    return query(config, ...rest)
  }
  const store = new PostgresStore({ connection: pool, tableName, pruneInterval: false, listen: options.listen ?? true })
  pools.push(pool)
  stores.push(store)
  return { store, sent }
}

function tokenOf(result: AcquireResult, who = 'the caller'): number {
  if (!result.acquired) throw new Error(`expected ${who} to be granted the lock`)
  return result.fencingToken
}

interface Row {
  owner: string | null
  token: number
  /** ms to the lease end on the server's clock (null: none). */
  left: number | null
  waiters: string[]
  inboxes: string[]
  /** ms to each place's lease end (null: ended by a leave or a release). */
  placesLeft: (number | null)[]
}

async function rowOf(key: string): Promise<Row> {
  const { rows } = await admin.query(
    `SELECT convert_from(owner, 'UTF8') AS owner, fencing_token::float8 AS token,
       (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 AS left,
       ARRAY(SELECT convert_from(w, 'UTF8') FROM unnest(waiters) AS w) AS waiters, waiter_inboxes AS inboxes,
       ARRAY(SELECT CASE WHEN isfinite(l) THEN extract(epoch FROM l - clock_timestamp()) * 1000 END FROM unnest(waiter_leases) AS l)::float8[] AS "placesLeft"
     FROM "${tableName}" WHERE key_hash = sha256($1::bytea)`,
    [toStoredBytes(key)],
  )
  const row = rows[0] as Row | undefined
  if (row === undefined) throw new Error(`no row for ${key}`)
  return row
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 5_000): Promise<void> {
  const until = performance.now() + ms
  while (!(await check())) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

const claims = (sent: string[]) => sent.filter((name) => name.startsWith('verrou_claim_')).length
const acquires = (sent: string[]) => sent.filter((name) => name.startsWith('verrou_acquire_')).length
/** The lock statements sent, by operation (the hash of their text dropped; the table checks left out). */
const operations = (sent: string[]) =>
  sent.filter((name) => name.startsWith('verrou_')).map((name) => name.replace(/_[0-9a-f]{16}$/, ''))

test('a release hands the lock to the waiting Lock of another process: no acquire statement, a claim for its ttl, the next token', async () => {
  const key = uniqueKey('handed')
  const holder = processStore()
  const heir = processStore()
  const holding = new LockFactory(holder.store).createLock(key, '10s')
  expect(await holding.acquire()).toBe(true)
  // The heir's store is listening already, so its Lock's wait settles on the notification alone.
  const listening = await heir.store.subscribeToReleases!(key, () => {})
  const waiting = new LockFactory(heir.store).createLock(key, '30s', { owner: 'heir' })
  const acquired = waiting.acquire({ retry: { timeout: 10_000 } })
  await waitFor(async () => (await rowOf(key)).waiters.length === 1, 'the waiter to queue')
  await sleep(100)
  const before = heir.sent.length

  await holding.release()
  expect(await acquired).toBe(true)
  expect(waiting.fencingToken).toBeGreaterThan(holding.fencingToken!)
  await waitFor(async () => ((await rowOf(key)).left ?? 0) > 20_000, 'the claim')
  const after = heir.sent.slice(before)
  expect(acquires(after)).toBe(0)
  expect(claims(after)).toBe(1)
  const row = await rowOf(key)
  expect(row).toMatchObject({ owner: 'heir', token: waiting.fencingToken, waiters: [], inboxes: [] })
  expect(waiting.getRemainingTime()).toBeGreaterThan(25_000)
  await waiting.release()
  await listening()
})

test('a holder whose store never saw the queue still hands over: the light release changes nothing, the full one hands over', async () => {
  const key = uniqueKey('unseen')
  const holder = processStore()
  const heir = processStore()
  expect((await holder.store.acquire(key, 'holder', 10_000)).acquired).toBe(true)
  const listening = await heir.store.subscribeToReleases!(key, () => {})
  const waiting = new LockFactory(heir.store).createLock(key, '30s', { owner: 'heir' })
  const acquired = waiting.acquire({ retry: { timeout: 10_000 } })
  await waitFor(async () => (await rowOf(key)).waiters.length === 1, 'the waiter to queue')
  const before = holder.sent.length

  expect(await holder.store.release(key, 'holder')).toBe(true)
  expect(operations(holder.sent.slice(before))).toEqual(['verrou_release_unqueued', 'verrou_release'])
  expect(await acquired).toBe(true)
  expect((await rowOf(key)).owner).toBe('heir')
  // The former holder is a stale owner now. Its store has seen the queue, so the full release alone
  // refuses it; a store that has not sends the light one first, which refuses it too.
  const stale = holder.sent.length
  expect(await holder.store.release(key, 'holder')).toBe(false)
  expect(operations(holder.sent.slice(stale))).toEqual(['verrou_release'])
  const stranger = processStore()
  expect(await stranger.store.release(key, 'holder')).toBe(false)
  expect(operations(stranger.sent)).toEqual(['verrou_release_unqueued', 'verrou_release'])
  expect(await holder.store.extend(key, 'holder', 10_000)).toBe(false)
  expect((await rowOf(key)).owner).toBe('heir')
  await waiting.release()
  await listening()
})

test('a holder whose store saw the queue (it waited in it) releases with the full statement alone', async () => {
  const key = uniqueKey('seen')
  const first = processStore()
  const second = processStore()
  const third = processStore()
  const holding = new LockFactory(first.store).createLock(key, '10s')
  expect(await holding.acquire()).toBe(true)
  const queued = new LockFactory(second.store).createLock(key, '10s', { owner: 'second' })
  const secondAcquired = queued.acquire({ retry: { timeout: 10_000 } })
  await waitFor(async () => (await rowOf(key)).waiters.length === 1, 'the second to queue')
  const last = new LockFactory(third.store).createLock(key, '10s', { owner: 'third' })
  const thirdAcquired = last.acquire({ retry: { timeout: 10_000 } })
  await waitFor(async () => (await rowOf(key)).waiters.length === 2, 'the third to queue')
  await holding.release()
  expect(await secondAcquired).toBe(true)
  const before = second.sent.length

  await queued.release()
  expect(operations(second.sent.slice(before))).toEqual(['verrou_release'])
  expect(await thirdAcquired).toBe(true)
  expect(last.fencingToken).toBeGreaterThan(queued.fencingToken!)
  await last.release()
})

test('the heir holds the lock unclaimed until its place lease ends, its inbox marked, and nobody else gets in', async () => {
  const key = uniqueKey('window')
  const holder = processStore()
  const heir = processStore()
  const newcomer = processStore({ listen: false })
  const first = tokenOf(await holder.store.acquire(key, 'holder', 60_000))
  expect(await heir.store.acquire(key, 'heir', 60_000, { lease: 1_500 })).toMatchObject({ acquired: false, position: 0 })
  expect(await holder.store.release(key, 'holder')).toBe(true)

  const row = await rowOf(key)
  expect(row.owner).toBe('heir')
  expect(row.token).toBeGreaterThan(first)
  expect(row.waiters).toEqual(['heir'])
  expect(row.inboxes[0]).toMatch(/^>verrou_heir_[0-9a-f]{32}$/)
  // The claim window is the heir's place lease: it ends with it.
  expect(Math.abs(row.left! - row.placesLeft[0]!)).toBeLessThan(1)
  expect(await newcomer.store.acquire(key, 'newcomer', 60_000)).toMatchObject({ acquired: false })
  expect(await newcomer.store.isLocked(key)).toBe(true)
  await heir.store.leaveQueue(key, 'heir')
})

test('a hand-over nobody heard is claimed by the heir’s next acquire, with the token it was handed', async () => {
  const key = uniqueKey('unheard')
  const holder = processStore()
  const heir = processStore() // never subscribed: nobody listens on its inbox
  tokenOf(await holder.store.acquire(key, 'holder', 60_000))
  await heir.store.acquire(key, 'heir', 60_000, { lease: 2_000 })
  expect(await holder.store.release(key, 'holder')).toBe(true)
  const handed = (await rowOf(key)).token

  expect(await heir.store.acquire(key, 'heir', 60_000, { lease: 2_000 })).toEqual({ acquired: true, fencingToken: handed })
  const row = await rowOf(key)
  expect(row).toMatchObject({ owner: 'heir', token: handed, waiters: [], inboxes: [] })
  expect(row.left).toBeGreaterThan(50_000)
  expect(await heir.store.release(key, 'heir')).toBe(true)
})

test('an heir that never claims holds up the next waiter only until its place lease ends; tokens still increase', async () => {
  const key = uniqueKey('dead-heir')
  const holder = processStore()
  const dead = processStore()
  const next = processStore({ listen: false })
  tokenOf(await holder.store.acquire(key, 'holder', 60_000))
  await dead.store.acquire(key, 'dead', 60_000, { lease: 400 })
  const diedAt = performance.now()
  await next.store.acquire(key, 'next', 60_000, { lease: 5_000 })
  expect(await holder.store.release(key, 'holder')).toBe(true)
  const handed = (await rowOf(key)).token

  let reply = await next.store.acquire(key, 'next', 60_000, { lease: 5_000 })
  expect(reply.acquired).toBe(false)
  while (!reply.acquired && performance.now() - diedAt < 3_000) {
    await sleep(10)
    reply = await next.store.acquire(key, 'next', 60_000, { lease: 5_000 })
  }
  const waited = performance.now() - diedAt
  expect(tokenOf(reply, 'the waiter behind the dead heir')).toBeGreaterThan(handed)
  expect(waited).toBeGreaterThanOrEqual(390)
  expect(waited).toBeLessThan(400 + 300)
  // Its window over, the dead heir's claim finds nothing to claim: it queues again like anyone.
  expect(await dead.store.acquire(key, 'dead', 60_000, { lease: 400 })).toMatchObject({ acquired: false, position: 0 })
  await dead.store.leaveQueue(key, 'dead')
  await next.store.release(key, 'next')
})

test('a waiter that gives up before claiming releases the grant, and the next waiter is told', async () => {
  const key = uniqueKey('gave-up')
  const holder = processStore()
  const quitter = processStore()
  const next = processStore()
  const heard: (string | undefined)[] = []
  const unsubscribe = await next.store.subscribeToReleases!(key, (owner) => heard.push(owner))
  try {
    tokenOf(await holder.store.acquire(key, 'holder', 60_000))
    await quitter.store.acquire(key, 'quitter', 60_000, { lease: 5_000 })
    await next.store.acquire(key, 'next', 60_000, { lease: 5_000 })
    expect(await holder.store.release(key, 'holder')).toBe(true)
    expect((await rowOf(key)).owner).toBe('quitter')

    await quitter.store.leaveQueue(key, 'quitter')
    expect(await holder.store.isLocked(key)).toBe(false)
    await waitFor(async () => heard.includes('next'), 'the next waiter to be told')
    tokenOf(await next.store.acquire(key, 'next', 60_000, { lease: 5_000 }), 'the next waiter')
    expect(await next.store.release(key, 'next')).toBe(true)
  } finally {
    await unsubscribe()
  }
})

test('an heir that releases before its claim lands passes the lock on, and its claim then changes nothing', async () => {
  const holder = processStore()
  const heir = processStore()
  const after = processStore()
  for (let round = 0; round < 10; round++) {
    const key = uniqueKey(`early-release-${round}`)
    const holding = new LockFactory(holder.store).createLock(key, '10s')
    expect(await holding.acquire()).toBe(true)
    const waiting = new LockFactory(heir.store).createLock(key, '30s')
    const handed = waiting.acquire({ retry: { timeout: 10_000 } })
    await waitFor(async () => (await rowOf(key)).waiters.length === 1, 'the heir to queue')
    const behind = new LockFactory(after.store).createLock(key, '30s', { owner: 'behind' })
    const behindAcquired = behind.acquire({ retry: { timeout: 10_000 } })
    await waitFor(async () => (await rowOf(key)).waiters.length === 2, 'the next waiter to queue')

    await holding.release()
    expect(await handed).toBe(true)
    // At once, racing the claim on another session of the pool.
    await waiting.release()
    expect(await behindAcquired).toBe(true)
    expect(behind.fencingToken).toBeGreaterThan(waiting.fencingToken!)
    await sleep(50)
    // Whichever landed first, the lock is the next waiter's alone, for its ttl, and nobody queues.
    // (The heir's own place, ended by its release, may stay in the row, dead, until an acquire writes it.)
    const row = await rowOf(key)
    expect(row.owner).toBe('behind')
    expect(row.placesLeft.filter((left) => left !== null && left > 0)).toEqual([])
    expect(await after.store.acquire(key, 'newcomer', 60_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
    await after.store.leaveQueue(key, 'newcomer')
    expect(waiting.isExpired()).toBe(true)
    await behind.release()
  }
})

test('a holder that also queued is never handed its own lock: the release frees it and names it first', async () => {
  const key = uniqueKey('self')
  const holder = processStore()
  const other = processStore()
  tokenOf(await holder.store.acquire(key, 'holder', 60_000))
  expect(await holder.store.acquire(key, 'holder', 60_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
  await other.store.acquire(key, 'other', 60_000, { lease: 5_000 })
  expect(await holder.store.release(key, 'holder')).toBe(true)
  expect(await rowOf(key)).toMatchObject({ owner: null, waiters: ['holder', 'other'] })
  tokenOf(await holder.store.acquire(key, 'holder', 60_000, { lease: 5_000 }), 'the holder, first in line')
  await other.store.leaveQueue(key, 'other')
  await holder.store.release(key, 'holder')
})

test('a waiter of a store that cannot take a hand-over (an earlier release of this package) is announced, not handed the lock', async () => {
  const key = uniqueKey('old-store')
  const holder = processStore()
  const old = processStore({ listen: false })
  const listener = await createClient()
  const heard: string[] = []
  listener.on('notification', (message) => heard.push(`${message.channel} ${message.payload}`))
  const inbox = 'verrou_inbox_0123456789abcdef0123456789abcdef'
  await listener.query(`LISTEN ${inbox}`)
  try {
    tokenOf(await holder.store.acquire(key, 'holder', 60_000))
    await old.store.acquire(key, 'old', 60_000, { lease: 5_000 })
    await admin.query(`UPDATE "${tableName}" SET waiter_inboxes = ARRAY[$2] WHERE key_hash = sha256($1::bytea)`, [
      toStoredBytes(key),
      inbox,
    ])
    expect(await holder.store.release(key, 'holder')).toBe(true)
    expect(await rowOf(key)).toMatchObject({ owner: null, waiters: ['old'] })
    await waitFor(async () => heard.length === 1, 'the announcement')
    expect(heard).toEqual([`${inbox} ${releasePayload(key)}\nx:${Buffer.from('old').toString('hex')}`])
    tokenOf(await old.store.acquire(key, 'old', 60_000, { lease: 5_000 }), 'the old store’s waiter')
    await old.store.release(key, 'old')
  } finally {
    await listener.end()
  }
})

test('a hand-over heard for another place than the one the waiter holds is ignored: its next attempt asks the server', async () => {
  const key = uniqueKey('stale')
  const holder = processStore()
  const waiter = processStore()
  const unsubscribe = await waiter.store.subscribeToReleases!(key, () => {})
  try {
    tokenOf(await holder.store.acquire(key, 'holder', 60_000))
    await waiter.store.acquire(key, 'waiter', 60_000, { lease: 5_000 })
    const inbox = (await rowOf(key)).inboxes[0]!
    const forged = `${releasePayload(key)}\ng:999999:20000101000000000000:x:${Buffer.from('waiter').toString('hex')}`
    await admin.query('SELECT pg_notify($1, $2)', [inbox, forged])
    await sleep(100)
    const before = waiter.sent.length
    expect(await waiter.store.acquire(key, 'waiter', 60_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
    expect(acquires(waiter.sent.slice(before))).toBe(1)
    await waiter.store.leaveQueue(key, 'waiter')
    await holder.store.release(key, 'holder')
  } finally {
    await unsubscribe()
  }
})

test('a hand-over taken back by a force release before the heir acted is forgotten: its next attempt asks the server', async () => {
  const key = uniqueKey('forced')
  const holder = processStore()
  const heir = processStore()
  const heard: (string | undefined)[] = []
  const unsubscribe = await heir.store.subscribeToReleases!(key, (owner) => heard.push(owner))
  try {
    tokenOf(await holder.store.acquire(key, 'holder', 60_000))
    await heir.store.acquire(key, 'heir', 60_000, { lease: 5_000 })
    expect(await holder.store.release(key, 'holder')).toBe(true)
    await waitFor(async () => heard.length === 1, 'the hand-over')
    const handed = (await rowOf(key)).token
    await holder.store.forceRelease(key)
    await waitFor(async () => heard.length === 2, 'the announcement of the force release')

    const before = heir.sent.length
    const reply = await heir.store.acquire(key, 'heir', 60_000, { lease: 5_000 })
    expect(acquires(heir.sent.slice(before))).toBe(1)
    expect(reply).not.toHaveProperty('handedOver')
    expect(tokenOf(reply, 'the heir, first in line for the freed lock')).toBeGreaterThan(handed)
    expect(await heir.store.release(key, 'heir')).toBe(true)
  } finally {
    await unsubscribe()
  }
})

test('an extend without expiry that overtakes the claim does not make the claim fail', async () => {
  const key = uniqueKey('overtaken')
  const holder = processStore()
  const heir = processStore() // never subscribed: the hand-over goes unheard, and the test runs the claim
  tokenOf(await holder.store.acquire(key, 'holder', 60_000))
  expect(await heir.store.acquire(key, 'heir', null, { lease: 2_000 })).toMatchObject({ acquired: false, position: 0 })
  expect(await holder.store.release(key, 'holder')).toBe(true)
  const handed = await rowOf(key)
  expect(handed.owner).toBe('heir')
  // The heir's extend (a lock held without expiry) lands first, then the claim statement runs.
  expect(await heir.store.extend(key, 'heir', null)).toBe(true)
  const claim = buildStatements(resolveTableNames(tableName)).claim
  const claimed = await admin.query(claim.text, [toStoredBytes(key), toStoredBytes('heir'), null, handed.token])
  expect(claimed.rowCount).toBe(1)
  expect(await rowOf(key)).toMatchObject({ owner: 'heir', left: null, waiters: [] })
  expect(await heir.store.release(key, 'heir')).toBe(true)
})
