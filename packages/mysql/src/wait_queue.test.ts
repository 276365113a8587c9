import { createHash, randomUUID } from 'node:crypto'
import type { AcquireResult } from '@verrou/core'
import { LockFactory } from '@verrou/core'
import type { Connection, RowDataPacket } from 'mysql2/promise'
import { afterAll, describe, expect, test } from 'vitest'
import { createTestConnection, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { type MysqlStore, mysqlStore } from './index.js'
import { keyHash, toBytes } from './key_bytes.js'
import {
  lockStatements,
  MAX_REPORTED_POSITION,
  NO_ROW,
  PLACE_BYTES,
  POSITION_UNIT,
  QUEUE_PRESENT,
  QUEUE_PRESENT_CODE,
  REFUSED_BASE,
  ROW_KEPT_MS,
  readAcquire,
  readExisting,
} from './sql.js'
import { resolveTables } from './table_name.js'

const pool = createTestPool({ connectionLimit: 4 })
const tableName = uniqueTableName('queue')
const connections: Connection[] = []
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const newKey = () => `verrou:mysql:queue:${randomUUID()}`
const TTL = 10_000

/** A store on a connection of its own: a separate "process" as far as the server can tell. */
async function processStore(options: { sqlMode?: string; isolation?: string } = {}): Promise<MysqlStore> {
  const connection = await createTestConnection()
  connections.push(connection)
  if (options.sqlMode !== undefined) await connection.query('SET SESSION sql_mode = ?', [options.sqlMode])
  if (options.isolation !== undefined) await connection.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${options.isolation}`)
  return mysqlStore({ connection, tableName, pruneInterval: false })
}

const statements = lockStatements(resolveTables(tableName))
const frontSql = statements.acquireAtFront.sql
const peekSql = statements.peekQueued.sql
const headPeekSql = statements.peekAtFront.sql

/** A store on a connection of its own that records the SQL of every statement it executes. */
async function recordingStore(): Promise<{ store: MysqlStore; sent: string[] }> {
  const connection = await createTestConnection()
  connections.push(connection)
  const sent: string[] = []
  const execute = connection.execute.bind(connection)
  Object.assign(connection, {
    execute(sql: string, params: unknown) {
      sent.push(sql)
      return execute(sql, params as never)
    },
  })
  const store = mysqlStore({ connection, tableName, pruneInterval: false })
  // Create the tables now, so that only the calls under test are recorded.
  await store.isLocked('warm-up')
  return { store, sent }
}

function tokenOf(result: AcquireResult): number {
  if (!result.acquired) throw new Error(`not granted: ${JSON.stringify(result)}`)
  return result.fencingToken
}

/** The token of a grant a release handed over, once its claim landed. */
async function claimedTokenOf(result: AcquireResult): Promise<number> {
  if (!result.acquired || result.handedOver === undefined) throw new Error(`not handed over: ${JSON.stringify(result)}`)
  expect(await result.handedOver.claimed).toBe(true)
  return result.fencingToken
}

function positionOf(result: AcquireResult): number | undefined {
  if (result.acquired) throw new Error('granted, expected a refusal')
  return result.position
}

async function queueOf(key: string): Promise<{ text: string | null; endsAt: number | null; owner: Buffer | null }> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT wait_queue, queue_ends_at, lock_owner FROM \`${tableName}\` WHERE key_hash = ?`,
    [keyHash(toBytes(key))],
  )
  const row = rows[0]
  return {
    text: row?.wait_queue ? (row.wait_queue as Buffer).toString('latin1') : null,
    endsAt: row?.queue_ends_at === null || row === undefined ? null : Number(row.queue_ends_at),
    owner: (row?.lock_owner as Buffer | null | undefined) ?? null,
  }
}

afterAll(async () => {
  await dropTables(pool, tableName)
  await Promise.all(connections.map((each) => each.end()))
  await pool.end()
})

describe('wait queue', () => {
  test.each(['REPEATABLE READ', 'READ COMMITTED', 'SERIALIZABLE'])(
    '12 joiners racing on 12 connections at %s get distinct places and are served in that order, one at a time, with increasing tokens',
    async (isolation) => {
      const holderStore = await processStore({ isolation })
      const stores = await Promise.all(Array.from({ length: 12 }, () => processStore({ isolation })))
      const key = newKey()
      let last = tokenOf(await holderStore.acquire(key, 'holder', TTL))
      const owners = stores.map((_, i) => `joiner-${i}`)
      const joined = await Promise.all(stores.map((store, i) => store.acquire(key, owners[i]!, TTL, { lease: TTL })))
      const positions = joined.map(positionOf)
      expect([...positions].sort((a, b) => a! - b!)).toEqual(owners.map((_, i) => i))
      const order = owners.map((_, i) => i).sort((a, b) => positions[a]! - positions[b]!)
      expect(await holderStore.release(key, 'holder')).toBe(true)

      let holder = -1
      const served = new Set<number>()
      for (const expected of order) {
        if (holder !== -1) expect(await stores[holder]!.release(key, owners[holder]!)).toBe(true)
        // Everyone still waiting asks at once: only the first live place may win.
        const replies = await Promise.all(
          stores.map((store, i) => (served.has(i) ? null : store.acquire(key, owners[i]!, TTL, { lease: TTL }))),
        )
        const winners = replies.flatMap((reply, i) => (reply?.acquired ? [i] : []))
        expect(winners).toEqual([expected])
        const token = tokenOf(replies[expected]!)
        expect(token).toBeGreaterThan(last)
        last = token
        holder = expected
        served.add(expected)
        // The newcomer without a place and the earlier holder are refused too.
        expect((await holderStore.acquire(key, 'newcomer', TTL)).acquired).toBe(false)
      }
      await stores[holder]!.release(key, owners[holder]!)
      expect((await queueOf(key)).text).toBeNull()
    },
  )

  test('Locks on 8 connections churning through one key, 2 more barging with acquireImmediately: never two holders, tokens increase, no waiter starves', async () => {
    const factories = await Promise.all(
      Array.from({ length: 8 }, async () => new LockFactory(await processStore(), { retry: { delay: 20, timeout: 20_000 } })),
    )
    const bargers = await Promise.all(Array.from({ length: 2 }, async () => new LockFactory(await processStore())))
    const key = newKey()
    const grants: Array<{ worker: number; token: number }> = []
    let inside = 0
    let overlaps = 0
    const deadline = performance.now() + 1_500
    await Promise.all([
      ...factories.map(async (factory, worker) => {
        const lock = factory.createLock(key, '5s')
        while (performance.now() < deadline) {
          await lock.run(async () => {
            inside++
            if (inside > 1) overlaps++
            grants.push({ worker, token: lock.fencingToken! })
            await sleep(2)
            inside--
          })
        }
      }),
      ...bargers.map(async (factory, i) => {
        const lock = factory.createLock(key, '5s')
        while (performance.now() < deadline) {
          await lock.runImmediately(async () => {
            inside++
            if (inside > 1) overlaps++
            grants.push({ worker: factories.length + i, token: lock.fencingToken! })
            await sleep(2)
            inside--
          })
          await sleep(5)
        }
      }),
    ])
    expect(overlaps).toBe(0)
    for (let i = 1; i < grants.length; i++) expect(grants[i]!.token).toBeGreaterThan(grants[i - 1]!.token)
    for (let worker = 0; worker < factories.length; worker++) {
      expect(grants.filter((grant) => grant.worker === worker).length).toBeGreaterThan(0)
    }
  })

  test('a dead head is skipped once its place lease ends, and dead places do not count in positions', async () => {
    const [a, b, c, d] = await Promise.all([processStore(), processStore(), processStore(), processStore()])
    const key = newKey()
    tokenOf(await a.acquire(key, 'holder', TTL))
    expect(positionOf(await b.acquire(key, 'dies-first', TTL, { lease: 300 }))).toBe(0)
    expect(positionOf(await c.acquire(key, 'lives', TTL, { lease: TTL }))).toBe(1)
    expect(positionOf(await b.acquire(key, 'dies-second', TTL, { lease: 300 }))).toBe(2)
    expect(positionOf(await d.acquire(key, 'last', TTL, { lease: TTL }))).toBe(3)
    expect(await a.release(key, 'holder')).toBe(true)
    // The head's place was still alive: the release handed it the lock, for what was left of that place's
    // lease, and nobody else gets it meanwhile.
    expect(positionOf(await c.acquire(key, 'lives', TTL, { lease: TTL }))).toBe(0)
    expect((await a.acquire(key, 'newcomer', TTL)).acquired).toBe(false)
    await sleep(400)
    // The grant nobody claimed ended with that place; the dead place in the middle is not counted.
    expect(positionOf(await d.acquire(key, 'last', TTL, { lease: TTL }))).toBe(1)
    const granted = await c.acquire(key, 'lives', TTL, { lease: TTL })
    tokenOf(granted)
    // The hand-over took the dead head's place, the grant the grantee's; the dead place behind is next to go.
    const { text } = await queueOf(key)
    expect(text?.length).toBe(2 * PLACE_BYTES)
    expect(positionOf(await d.acquire(key, 'last', TTL, { lease: TTL }))).toBe(0)
    expect(await c.release(key, 'lives')).toBe(true)
    tokenOf(await d.acquire(key, 'last', TTL, { lease: TTL }))
    expect((await queueOf(key)).text).toBeNull()
    await d.release(key, 'last')
  })

  test('a waiter whose place died joins again at the tail, keeping one place', async () => {
    const [a, b, c] = await Promise.all([processStore(), processStore(), processStore()])
    const key = newKey()
    tokenOf(await a.acquire(key, 'holder', TTL))
    expect(positionOf(await b.acquire(key, 'slow', TTL, { lease: 200 }))).toBe(0)
    expect(positionOf(await c.acquire(key, 'steady', TTL, { lease: TTL }))).toBe(1)
    await sleep(300)
    expect(positionOf(await b.acquire(key, 'slow', TTL, { lease: TTL }))).toBe(1)
    expect(positionOf(await c.acquire(key, 'steady', TTL, { lease: TTL }))).toBe(0)
    expect((await queueOf(key)).text?.length).toBe(2 * PLACE_BYTES)
    await b.leaveQueue(key, 'slow')
    await b.leaveQueue(key, 'slow')
    expect((await queueOf(key)).text?.length).toBe(PLACE_BYTES)
    await c.leaveQueue(key, 'steady')
    expect((await queueOf(key)).text).toBeNull()
    await a.release(key, 'holder')
  })

  test('owners that are prefixes or byte variants of each other keep their own places', async () => {
    const [a, b] = await Promise.all([processStore(), processStore()])
    const key = newKey()
    const owners = ['o', 'o ', 'O', 'oo', 'o\u0000', '🔒', '\uD800', 'x'.repeat(10_000)]
    tokenOf(await a.acquire(key, 'holder', TTL))
    for (const [i, owner] of owners.entries()) expect(positionOf(await b.acquire(key, owner, TTL, { lease: TTL }))).toBe(i)
    for (const [i, owner] of owners.entries()) expect(positionOf(await a.acquire(key, owner, TTL, { lease: TTL }))).toBe(i)
    await b.leaveQueue(key, 'oo')
    expect(positionOf(await a.acquire(key, '🔒', TTL, { lease: TTL }))).toBe(4)
    await a.forceRelease(key)
    for (const owner of owners.filter((each) => each !== 'oo')) {
      tokenOf(await b.acquire(key, owner, TTL, { lease: TTL }))
      await b.release(key, owner)
    }
    expect((await queueOf(key)).text).toBeNull()
  })

  test('pruning keeps a row whose queue has a live place, and deletes it once every place is dead', async () => {
    const store = await processStore()
    const key = newKey()
    const first = tokenOf(await store.acquire(key, 'holder', TTL))
    await store.acquire(key, 'waiter', TTL, { lease: ROW_KEPT_MS + 500 })
    // A force release ends the lease without handing it to the waiter, whose place stays.
    await store.forceRelease(key)
    const before = await queueOf(key)
    expect(before.text).not.toBeNull()
    // The lease ended long enough ago to be pruned, but the waiter's place is alive: the row (and the queue
    // in it) stays.
    await sleep(ROW_KEPT_MS + 100)
    await store.pruneExpired()
    expect(await queueOf(key)).toEqual(before)
    expect((await store.acquire(key, 'newcomer', TTL)).acquired).toBe(false)
    await sleep(600)
    expect(await store.pruneExpired()).toBeGreaterThanOrEqual(1)
    expect((await queueOf(key)).text).toBeNull()
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT 1 FROM \`${tableName}\` WHERE key_hash = ?`, [keyHash(toBytes(key))])
    expect(rows).toHaveLength(0)
    expect(tokenOf(await store.acquire(key, 'newcomer', TTL))).toBeGreaterThan(first)
  })

  test('a queue with a lease far longer than the lock keeps its row after the lock ends', async () => {
    const store = await processStore()
    const key = newKey()
    tokenOf(await store.acquire(key, 'holder', 100))
    await store.acquire(key, 'waiter', TTL, { lease: 60_000 })
    await sleep(150)
    await store.pruneExpired()
    expect((await queueOf(key)).text).not.toBeNull()
    tokenOf(await store.acquire(key, 'waiter', TTL, { lease: 60_000 }))
    await store.release(key, 'waiter')
  })

  test('the head renews its place in the one statement that does not walk the queue, and a release hands it the lock', async () => {
    const { store: head, sent } = await recordingStore()
    const holder = await processStore()
    const key = newKey()
    const first = tokenOf(await holder.acquire(key, 'holder', TTL))
    expect(positionOf(await head.acquire(key, 'head', TTL, { lease: 800 }))).toBe(0)
    const joinedEnd = (await queueOf(key)).endsAt!
    // Past a quarter of its place lease, the head's poll (a read first) renews the place.
    await sleep(300)
    sent.length = 0
    const polled = await head.acquire(key, 'head', TTL, { lease: 800 })
    expect(polled).toMatchObject({ acquired: false, position: 0 })
    expect(polled.acquired ? 0 : polled.expiresIn).toBeGreaterThan(TTL - 1_000)
    expect(sent).toEqual([headPeekSql, frontSql])
    const renewed = await queueOf(key)
    expect(renewed.endsAt).toBeGreaterThanOrEqual(joinedEnd + 250)
    expect(Number(renewed.text?.slice(65, 81))).toBe(renewed.endsAt)
    // The release gives the head the next token, for what is left of its place's lease, and takes its place.
    expect(await holder.release(key, 'holder')).toBe(true)
    const handed = await queueOf(key)
    expect(handed.text).toBeNull()
    expect(handed.owner?.toString('latin1')).toBe(`\xff${createHash('sha256').update('head').digest('hex')}`)
    expect((await holder.acquire(key, 'newcomer', TTL)).acquired).toBe(false)
    sent.length = 0
    const taken = await head.acquire(key, 'head', TTL, { lease: 800 })
    expect(taken.acquired && taken.handedOver?.lease).toBeLessThanOrEqual(800)
    expect(taken.acquired && taken.handedOver?.lease).toBeGreaterThan(0)
    expect(await claimedTokenOf(taken)).toBe(first + 1)
    expect(sent).toEqual([headPeekSql, statements.claim.sql])
    expect((await queueOf(key)).owner?.toString()).toBe('head')
    expect(await holder.isLocked(key)).toBe(true)
    expect((await holder.acquire(key, 'newcomer', TTL)).acquired).toBe(false)
    expect(await head.release(key, 'head')).toBe(true)
  })

  test('the head takes a lease that expired unreleased, and never one that is live', async () => {
    const { store: head, sent } = await recordingStore()
    const holder = await processStore()
    const key = newKey()
    const first = tokenOf(await holder.acquire(key, 'holder', 300))
    expect(positionOf(await head.acquire(key, 'head', TTL, { lease: TTL }))).toBe(0)
    // A live lease is refused by the read alone; an expired one is taken by the head statement.
    sent.length = 0
    expect(positionOf(await head.acquire(key, 'head', TTL, { lease: TTL }))).toBe(0)
    await sleep(350)
    expect(tokenOf(await head.acquire(key, 'head', TTL, { lease: TTL }))).toBe(first + 1)
    expect(sent).toEqual([headPeekSql, headPeekSql, frontSql])
    expect((await queueOf(key)).owner?.toString()).toBe('head')
    // The stale holder can neither release nor extend what the head now holds.
    expect(await holder.release(key, 'holder')).toBe(false)
    expect(await holder.extend(key, 'holder', TTL)).toBe(false)
    expect(await head.release(key, 'head')).toBe(true)
  })

  test('a head whose place no longer opens the queue (a dead place before it) is decided by the full statement', async () => {
    const { store: second, sent } = await recordingStore()
    const holder = await processStore()
    const dying = await processStore()
    const key = newKey()
    const first = tokenOf(await holder.acquire(key, 'holder', TTL))
    expect(positionOf(await dying.acquire(key, 'dies', TTL, { lease: 200 }))).toBe(0)
    expect(positionOf(await second.acquire(key, 'second', TTL, { lease: TTL }))).toBe(1)
    await sleep(300)
    // The dead place does not count: `second` leads, though the dead place still opens the text.
    sent.length = 0
    expect(positionOf(await second.acquire(key, 'second', TTL, { lease: TTL }))).toBe(0)
    expect(sent).toEqual([peekSql])
    expect((await queueOf(key)).text?.length).toBe(2 * PLACE_BYTES)
    // A release never hands the lock to a dead place: it is free, and the head statement passes it on.
    expect(await holder.release(key, 'holder')).toBe(true)
    expect((await queueOf(key)).owner).toBeNull()
    sent.length = 0
    expect(tokenOf(await second.acquire(key, 'second', TTL, { lease: TTL }))).toBe(first + 1)
    expect(sent).toEqual([headPeekSql, frontSql, statements.acquireQueued.sql])
    // The grant dropped the dead place with the grantee's.
    expect((await queueOf(key)).text).toBeNull()
    // A place that is not the caller's never lets it claim: a newcomer with wait joins behind the holder.
    expect(positionOf(await dying.acquire(key, 'dies', TTL, { lease: TTL }))).toBe(0)
    expect(await second.release(key, 'second')).toBe(true)
    expect(await claimedTokenOf(await dying.acquire(key, 'dies', TTL, { lease: TTL }))).toBe(first + 2)
    await dying.release(key, 'dies')
  })

  test("the head's read looks at the first place only, and answers as the read that walks the queue", async () => {
    const holder = await processStore()
    const head = await processStore()
    const second = await processStore()
    /** Both reads for `owner` on `key`, the columns as numbers. */
    const reads = async (key: string, owner: string) => {
      const id = Buffer.from(createHash('sha256').update(owner).digest('hex'), 'latin1')
      const run = async (sql: string, params: readonly string[]): Promise<Record<string, number>> => {
        const values = params.map((name) => (name === 'keyHash' ? keyHash(toBytes(key)) : id))
        const [rows] = await pool.execute<RowDataPacket[]>(sql, values)
        const row = rows[0]!
        return Object.fromEntries(
          ['free', 'placed', 'position', 'expires_in', 'handed', 'fencing_token'].map((name) => [name, Number(row[name])]),
        )
      }
      const [front, walked] = [
        await run(headPeekSql, statements.peekAtFront.params),
        await run(peekSql, statements.peekQueued.params),
      ]
      // Each read takes the server's clock when it runs: the times left may differ by the gap between them.
      expect(Math.abs(front.expires_in! - walked.expires_in!)).toBeLessThan(100)
      const timeless = (row: Record<string, number>): Record<string, number> => ({ ...row, expires_in: 0 })
      return { front: timeless(front), walked: timeless(walked) }
    }

    // Held, the head first: refused at position 0 by both; a place behind the first is left to the statements.
    const key = newKey()
    tokenOf(await holder.acquire(key, 'holder', TTL))
    expect(positionOf(await head.acquire(key, 'head', TTL, { lease: TTL }))).toBe(0)
    expect(positionOf(await second.acquire(key, 'second', TTL, { lease: TTL }))).toBe(1)
    const held = await reads(key, 'head')
    expect(held.front).toEqual(held.walked)
    expect(held.front).toMatchObject({ free: 0, placed: 1, position: 0, handed: 0 })
    expect((await reads(key, 'second')).front).toMatchObject({ placed: 0 })
    // Handed to the head by the release: the same token for both, and `second` now opens the queue.
    expect(await holder.release(key, 'holder')).toBe(true)
    // A caller told of its hand-over looks at nothing else (see readPeek): its place has gone with the grant.
    const handed = await reads(key, 'head')
    expect(handed.front).toMatchObject({ handed: 1, fencing_token: handed.walked.fencing_token })
    expect(handed.walked.handed).toBe(1)
    const next = await reads(key, 'second')
    expect(next.front).toEqual(next.walked)
    expect(next.front).toMatchObject({ placed: 1, position: 0, free: 0 })

    // A lease that ended unreleased: free for the head alone, by both reads.
    const expiring = newKey()
    tokenOf(await holder.acquire(expiring, 'holder', 200))
    expect(positionOf(await head.acquire(expiring, 'head', TTL, { lease: TTL }))).toBe(0)
    expect(positionOf(await second.acquire(expiring, 'second', TTL, { lease: TTL }))).toBe(1)
    await sleep(250)
    const ended = await reads(expiring, 'head')
    expect(ended.front).toEqual(ended.walked)
    expect(ended.front).toMatchObject({ free: 1, placed: 1 })

    // A dead place before the head: the walk skips it; the first place alone cannot, so it says "not placed".
    const behindDead = newKey()
    tokenOf(await holder.acquire(behindDead, 'holder', TTL))
    expect(positionOf(await second.acquire(behindDead, 'dies', TTL, { lease: 200 }))).toBe(0)
    expect(positionOf(await head.acquire(behindDead, 'head', TTL, { lease: TTL }))).toBe(1)
    await sleep(250)
    const afterDeath = await reads(behindDead, 'head')
    expect(afterDeath.walked).toMatchObject({ placed: 1, position: 0 })
    expect(afterDeath.front).toMatchObject({ placed: 0, position: 0 })
    for (const each of [key, expiring, behindDead]) await holder.forceRelease(each)
  })

  test('a head that finds a dead place before it while the lock is held stays first, and from then on reads the whole queue', async () => {
    const { store: waiter, sent } = await recordingStore()
    const holder = await processStore()
    const dying = await processStore()
    const key = newKey()
    const first = tokenOf(await holder.acquire(key, 'holder', TTL))
    expect(positionOf(await dying.acquire(key, 'dies', TTL, { lease: 200 }))).toBe(0)
    expect(positionOf(await waiter.acquire(key, 'waiter', TTL, { lease: TTL }))).toBe(1)
    await sleep(300)
    // Second in line when last seen: the walking read, which finds it first.
    sent.length = 0
    expect(positionOf(await waiter.acquire(key, 'waiter', TTL, { lease: TTL }))).toBe(0)
    expect(sent).toEqual([peekSql])
    // Now the head: its read sees a place before its own, so the statements decide, and it stays first.
    sent.length = 0
    expect(positionOf(await waiter.acquire(key, 'waiter', TTL, { lease: TTL }))).toBe(0)
    expect(sent).toEqual([headPeekSql, frontSql, statements.acquireQueued.sql])
    // The dead place still opens the text: the next polls walk the queue, one read each.
    sent.length = 0
    expect(positionOf(await waiter.acquire(key, 'waiter', TTL, { lease: TTL }))).toBe(0)
    expect(positionOf(await waiter.acquire(key, 'waiter', TTL, { lease: TTL }))).toBe(0)
    expect(sent).toEqual([peekSql, peekSql])
    // The release frees the lock (it never hands it to a dead first place) and the waiter's statement takes it.
    expect(await holder.release(key, 'holder')).toBe(true)
    sent.length = 0
    expect(tokenOf(await waiter.acquire(key, 'waiter', TTL, { lease: TTL }))).toBeGreaterThan(first)
    expect(sent).toEqual([peekSql, statements.acquireQueued.sql])
    expect(await waiter.release(key, 'waiter')).toBe(true)
  })

  test.each([
    ['SIMULTANEOUS_ASSIGNMENT', (global: string) => `${global},SIMULTANEOUS_ASSIGNMENT`],
    ['ORACLE (which includes it)', () => 'ORACLE'],
  ])("under MariaDB's %s sql_mode the queue decides the same", async (_, modeFrom) => {
    const [[version]] = (await pool.query<RowDataPacket[]>('SELECT VERSION() AS version')) as unknown as [[{ version: string }]]
    if (!/MariaDB/i.test(version.version)) {
      // MySQL has no such mode: setting it is refused, so nothing to check there.
      await expect(processStore({ sqlMode: 'SIMULTANEOUS_ASSIGNMENT' })).rejects.toThrow()
      return
    }
    const [[mode]] = (await pool.query<RowDataPacket[]>('SELECT @@GLOBAL.sql_mode AS mode')) as unknown as [[{ mode: string }]]
    const sqlMode = modeFrom(mode.mode)
    const [a, b, c] = await Promise.all([processStore({ sqlMode }), processStore({ sqlMode }), processStore({ sqlMode })])
    const key = newKey()
    const first = tokenOf(await a.acquire(key, 'holder', TTL))
    expect(positionOf(await b.acquire(key, 'first', TTL, { lease: TTL }))).toBe(0)
    expect(positionOf(await c.acquire(key, 'second', TTL, { lease: TTL }))).toBe(1)
    // The release hands the lock to the first in line, whose place leaves the queue.
    expect(await a.release(key, 'holder')).toBe(true)
    expect(positionOf(await c.acquire(key, 'second', TTL, { lease: TTL }))).toBe(0)
    expect((await a.acquire(key, 'holder', TTL)).acquired).toBe(false)
    const second = await claimedTokenOf(await b.acquire(key, 'first', TTL, { lease: TTL }))
    expect(second).toBeGreaterThan(first)
    expect((await queueOf(key)).owner?.toString()).toBe('first')
    expect(await c.isLocked(key)).toBe(true)
    expect(positionOf(await c.acquire(key, 'second', TTL, { lease: TTL }))).toBe(0)
    expect(await b.release(key, 'first')).toBe(true)
    expect(await claimedTokenOf(await c.acquire(key, 'second', TTL, { lease: TTL }))).toBeGreaterThan(second)
    expect(await c.release(key, 'second')).toBe(true)
    expect(tokenOf(await a.acquire(key, 'holder', TTL))).toBeGreaterThan(second)
    await a.release(key, 'holder')
  })
})

describe('readAcquire', () => {
  test('a refusal with wait carries the position and the time left; without wait, only the time left', () => {
    expect(readAcquire(REFUSED_BASE + 3 * POSITION_UNIT + 1_500, true)).toEqual({
      acquired: false,
      position: 3,
      expiresIn: 1_500,
    })
    expect(readAcquire(REFUSED_BASE + 2 * POSITION_UNIT, true)).toEqual({ acquired: false, position: 2 })
    expect(readAcquire(REFUSED_BASE + MAX_REPORTED_POSITION * POSITION_UNIT + 7, true)).toEqual({
      acquired: false,
      expiresIn: 7,
    })
    expect(readAcquire(REFUSED_BASE + 1_500, false)).toEqual({ acquired: false, expiresIn: 1_500 })
    expect(readAcquire(0, false)).toEqual({ acquired: false })
    // A refusal with nothing left to report: a lease that never ends.
    expect(readAcquire(REFUSED_BASE, false)).toEqual({ acquired: false })
    expect(readExisting(0, false)).toBe(NO_ROW)
    expect(readExisting(REFUSED_BASE, false)).toEqual({ acquired: false })
    expect(readExisting(42, false)).toEqual({ acquired: true, fencingToken: 42 })
    expect(readAcquire(42, true)).toEqual({ acquired: true, fencingToken: 42 })
    expect(readAcquire(QUEUE_PRESENT_CODE, true)).toBe(QUEUE_PRESENT)
    expect(readAcquire(QUEUE_PRESENT_CODE, false)).toBe(QUEUE_PRESENT)
    // The largest refusal with wait is not mistaken for it.
    expect(readAcquire(REFUSED_BASE + MAX_REPORTED_POSITION * POSITION_UNIT + POSITION_UNIT - 2, true)).toEqual({
      acquired: false,
      expiresIn: POSITION_UNIT - 2,
    })
    expect(Number.isSafeInteger(REFUSED_BASE + MAX_REPORTED_POSITION * POSITION_UNIT + POSITION_UNIT - 1)).toBe(true)
  })

  test('the statement reports a position past 2^32 ms of lease as position only', async () => {
    const store = await processStore()
    const key = newKey()
    tokenOf(await store.acquire(key, 'holder', 2 ** 40))
    expect(await store.acquire(key, 'waiter', TTL, { lease: TTL })).toEqual({ acquired: false, position: 0 })
    const short = newKey()
    tokenOf(await store.acquire(short, 'holder', 5_000))
    const reply = await store.acquire(short, 'waiter', TTL, { lease: TTL })
    expect(reply).toMatchObject({ acquired: false, position: 0 })
    expect(reply.acquired ? 0 : reply.expiresIn).toBeGreaterThan(4_000)
    await store.forceRelease(key)
    await store.forceRelease(short)
  })
})
