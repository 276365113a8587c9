import { createHash, randomUUID } from 'node:crypto'
import type { AcquireResult } from '@verrou/core'
import type { Connection } from 'mysql2/promise'
import { afterAll, describe, expect, test } from 'vitest'
import { createTestConnection, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { type MysqlStore, mysqlStore } from './index.js'
import { keyHash, toBytes } from './key_bytes.js'
import { lockStatements, NOW_MS } from './sql.js'
import { resolveTables } from './table_name.js'

const pool = createTestPool()
const tableName = uniqueTableName('handover')
const connections: Connection[] = []
const newKey = () => `verrou:mysql:handover:${randomUUID()}`
const TTL = 10_000
const WAIT = { lease: 5_000 }

afterAll(async () => {
  await dropTables(pool, tableName)
  await Promise.all(connections.map((each) => each.end()))
  await pool.end()
})

/** A store on a connection of its own: a separate "process" as far as the server can tell. */
async function processStore(): Promise<MysqlStore> {
  const connection = await createTestConnection()
  connections.push(connection)
  return mysqlStore({ connection, tableName, pruneInterval: false })
}

function handedOf(result: AcquireResult) {
  if (!result.acquired || result.handedOver === undefined) throw new Error(`not handed over: ${JSON.stringify(result)}`)
  return { token: result.fencingToken, ...result.handedOver }
}

/** `holder` holds `key` and `heir` leads its queue: the next release hands the lock to `heir`. */
async function heirInLine(key: string, holderStore: MysqlStore, heirStore: MysqlStore): Promise<number> {
  const held = await holderStore.acquire(key, 'holder', TTL)
  if (!held.acquired) throw new Error('the key was not free')
  expect(await heirStore.acquire(key, 'heir', TTL, WAIT)).toMatchObject({ acquired: false, position: 0 })
  return held.fencingToken
}

/** Runs the claim statement by hand, as a late claim of `owner` for `token` would: the token it reports (0: none). */
async function runClaim(key: string, owner: string, token: number): Promise<number> {
  const claim = lockStatements(resolveTables(tableName)).claim
  const values: Record<string, unknown> = {
    owner: toBytes(owner),
    ownerId: Buffer.from(createHash('sha256').update(owner).digest('hex'), 'latin1'),
    keyHash: keyHash(toBytes(key)),
    ttl: TTL,
    token,
  }
  const [header] = (await pool.execute(claim.sql, claim.params.map((name) => values[name]) as never)) as unknown as [
    { insertId: number },
  ]
  return Number(header.insertId)
}

describe('MySQL hand-over', () => {
  test('a holder whose store never saw the queue still hands the lock over: its light release finds the queue, and the full one hands over', async () => {
    const connection = await createTestConnection()
    connections.push(connection)
    const holder = mysqlStore({ connection, tableName, pruneInterval: false })
    const heir = await processStore()
    const key = newKey()
    const first = await heirInLine(key, holder, heir)
    const executes = async () => {
      const [[row]] = (await connection.query("SHOW SESSION STATUS LIKE 'Com_stmt_execute'")) as unknown as [[{ Value: string }]]
      return Number(row.Value)
    }
    const before = await executes()
    expect(await holder.release(key, 'holder')).toBe(true)
    expect((await executes()) - before).toBe(2)
    const handed = handedOf(await heir.acquire(key, 'heir', TTL, WAIT))
    expect(handed.token).toBe(first + 1)
    // The former holder is a stale owner: both statements refuse it.
    expect(await holder.release(key, 'holder')).toBe(false)
    expect(await holder.extend(key, 'holder', TTL)).toBe(false)
    expect(await heir.release(key, 'heir')).toBe(true)
  })

  test('a waiter that gives up gives back a grant it never saw: the next in line gets the lock at once', async () => {
    const [holder, heir, next] = await Promise.all([processStore(), processStore(), processStore()])
    const key = newKey()
    const first = await heirInLine(key, holder, heir)
    expect(await next.acquire(key, 'next', TTL, WAIT)).toMatchObject({ acquired: false, position: 1 })
    expect(await holder.release(key, 'holder')).toBe(true)
    // Handed to `heir`, which times out before its next poll.
    expect(await next.acquire(key, 'next', TTL, WAIT)).toMatchObject({ acquired: false, position: 0 })
    await heir.leaveQueue(key, 'heir')
    const taken = await next.acquire(key, 'next', TTL, WAIT)
    expect(taken).toMatchObject({ acquired: true })
    expect(taken.acquired && taken.fencingToken).toBeGreaterThan(first + 1)
    // The leave gave the grant back; it cannot be claimed or released by the one that left.
    expect(await heir.release(key, 'heir')).toBe(false)
    expect(await heir.extend(key, 'heir', TTL)).toBe(false)
    expect(await next.release(key, 'next')).toBe(true)
  })

  test('an heir that releases within the first quarter of its window never sends the claim, and hands the lock on', async () => {
    const [holder, heir, next] = await Promise.all([processStore(), processStore(), processStore()])
    const key = newKey()
    const first = await heirInLine(key, holder, heir)
    expect(await next.acquire(key, 'next', TTL, WAIT)).toMatchObject({ acquired: false, position: 1 })
    expect(await holder.release(key, 'holder')).toBe(true)
    const handed = handedOf(await heir.acquire(key, 'heir', TTL, WAIT))
    expect(await heir.release(key, 'heir')).toBe(true)
    expect(await handed.claimed).toBe(false)
    const [[row]] = (await pool.query(`SELECT fencing_token, HEX(lock_owner) AS owner FROM \`${tableName}\` WHERE key_hash = ?`, [
      keyHash(toBytes(key)),
    ])) as unknown as [[{ fencing_token: number; owner: string }]]
    // Handed on to `next`: the heir's grant was never claimed (its owner bytes never written).
    expect(Number(row.fencing_token)).toBe(first + 2)
    expect(row.owner.startsWith('FF')).toBe(true)
    const taken = handedOf(await next.acquire(key, 'next', TTL, WAIT))
    expect(taken.token).toBe(first + 2)
    expect(await next.release(key, 'next')).toBe(true)
  })

  test('an heir that asked for a ttl shorter than its window claims at once, bringing the lease down to that ttl', async () => {
    const [holder, heir] = await Promise.all([processStore(), processStore()])
    const key = newKey()
    await heirInLine(key, holder, heir)
    expect(await holder.release(key, 'holder')).toBe(true)
    const startedAt = performance.now()
    const handed = handedOf(await heir.acquire(key, 'heir', 300, WAIT))
    expect(await handed.claimed).toBe(true)
    expect(performance.now() - startedAt).toBeLessThan(WAIT.lease * 0.25)
    const [[row]] = (await pool.query(`SELECT expires_at - ${NOW_MS} AS left_ms FROM \`${tableName}\` WHERE key_hash = ?`, [
      keyHash(toBytes(key)),
    ])) as unknown as [[{ left_ms: number }]]
    expect(Number(row.left_ms)).toBeLessThanOrEqual(300)
    expect(await heir.release(key, 'heir')).toBe(true)
  })

  test('a grant taken back by a force release before the heir claims it is never claimed', async () => {
    const [holder, heir] = await Promise.all([processStore(), processStore()])
    const key = newKey()
    await heirInLine(key, holder, heir)
    expect(await holder.release(key, 'holder')).toBe(true)
    // Another session holds the row lock: the heir's read still answers (it takes no lock), its claim waits.
    const other = await pool.getConnection()
    try {
      await other.beginTransaction()
      await other.query(`SELECT 1 FROM \`${tableName}\` WHERE key_hash = ? FOR UPDATE`, [keyHash(toBytes(key))])
      const handed = handedOf(await heir.acquire(key, 'heir', TTL, WAIT))
      // A force release, in that session, lands before the claim.
      await other.query(`UPDATE \`${tableName}\` SET lock_owner = NULL, expires_at = ${NOW_MS} WHERE key_hash = ?`, [
        keyHash(toBytes(key)),
      ])
      await other.commit()
      expect(await handed.claimed).toBe(false)
      expect(await heir.isLocked(key)).toBe(false)
      expect(await heir.release(key, 'heir')).toBe(false)
      const rival = await holder.acquire(key, 'rival', TTL)
      expect(rival.acquired && rival.fencingToken).toBeGreaterThan(handed.token)
      expect(await holder.release(key, 'rival')).toBe(true)
    } finally {
      other.release()
    }
  })

  test('a claim that finds another token, owner or an ended grant changes nothing', async () => {
    const [holder, heir, next] = await Promise.all([processStore(), processStore(), processStore()])
    const key = newKey()
    await heirInLine(key, holder, heir)
    expect(await next.acquire(key, 'next', TTL, WAIT)).toMatchObject({ acquired: false, position: 1 })
    expect(await holder.release(key, 'holder')).toBe(true)
    const handed = handedOf(await heir.acquire(key, 'heir', TTL, WAIT))
    // The heir releases before its claim is sent: the lock goes on to `next`. A late claim for the heir's
    // token (run by hand here, as one delayed on the wire would land) finds a grant that is not its own.
    expect(await heir.release(key, 'heir')).toBe(true)
    expect(await runClaim(key, 'heir', handed.token)).toBe(0)
    const passedOn = handedOf(await next.acquire(key, 'next', TTL, WAIT))
    expect(passedOn.token).toBe(handed.token + 1)
    // Nor can the heir claim `next`'s grant with `next`'s token.
    expect(await runClaim(key, 'heir', passedOn.token)).toBe(0)
    expect(await passedOn.claimed).toBe(true)
    expect(await heir.release(key, 'heir')).toBe(false)
    expect(await heir.extend(key, 'heir', TTL)).toBe(false)
    expect(await holder.acquire(key, 'rival', TTL)).toMatchObject({ acquired: false })
    expect(await next.release(key, 'next')).toBe(true)
  })

  test('an extend that overtakes the claim (on another connection of a pool) does not make the claim fail', async () => {
    const [holder, heir] = await Promise.all([processStore(), processStore()])
    const key = newKey()
    await heirInLine(key, holder, heir)
    expect(await holder.release(key, 'holder')).toBe(true)
    const [[row]] = (await pool.query(`SELECT fencing_token FROM \`${tableName}\` WHERE key_hash = ?`, [
      keyHash(toBytes(key)),
    ])) as unknown as [[{ fencing_token: number }]]
    // The heir's extend lands first (it claims the grant as an extend), then the claim statement runs.
    expect(await heir.extend(key, 'heir', 3_000)).toBe(true)
    expect(await runClaim(key, 'heir', Number(row.fencing_token))).toBe(Number(row.fencing_token))
    const [[after]] = (await pool.query(`SELECT expires_at - ${NOW_MS} AS left_ms FROM \`${tableName}\` WHERE key_hash = ?`, [
      keyHash(toBytes(key)),
    ])) as unknown as [[{ left_ms: number }]]
    expect(Number(after.left_ms)).toBeGreaterThan(TTL - 2_000)
    expect(await heir.release(key, 'heir')).toBe(true)
  })

  test('an heir that never polls again holds up the next only until its place lease ends', async () => {
    const [holder, heir, next] = await Promise.all([processStore(), processStore(), processStore()])
    const key = newKey()
    await holder.acquire(key, 'holder', TTL)
    expect(await heir.acquire(key, 'heir', TTL, { lease: 400 })).toMatchObject({ acquired: false, position: 0 })
    expect(await next.acquire(key, 'next', TTL, WAIT)).toMatchObject({ acquired: false, position: 1 })
    const releasedAt = performance.now()
    expect(await holder.release(key, 'holder')).toBe(true)
    let taken: AcquireResult = { acquired: false }
    while (!taken.acquired) {
      taken = await next.acquire(key, 'next', TTL, WAIT)
      if (!taken.acquired) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const waited = performance.now() - releasedAt
    expect(waited).toBeGreaterThan(300)
    expect(waited).toBeLessThan(1_500)
    // Granted by its own statement (the grant nobody claimed ended), not handed over.
    expect(taken.handedOver).toBeUndefined()
    expect(await heir.acquire(key, 'heir', TTL, WAIT)).toMatchObject({ acquired: false })
    expect(await next.release(key, 'next')).toBe(true)
  })
})
