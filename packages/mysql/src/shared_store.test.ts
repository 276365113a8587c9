import { randomUUID } from 'node:crypto'
import { type AcquireResult, errors, type SharedMode } from '@verrou/core'
import type { Connection, RowDataPacket } from 'mysql2/promise'
import { afterAll, afterEach, describe, expect, test } from 'vitest'
import { createTestConnection, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { type MysqlStore, mysqlStore } from './index.js'
import { keyHash, toBytes } from './key_bytes.js'

const pool = createTestPool({ connectionLimit: 4 })
const tableName = uniqueTableName('shared')
const store = mysqlStore({ connection: pool, tableName, pruneInterval: false })
const connections: Connection[] = []
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const newKey = () => `verrou:mysql:shared:${randomUUID()}`
const TTL = 10_000
const WRITE: SharedMode = { exclusive: true, limit: null }
const READ: SharedMode = { exclusive: false, limit: null }
const permits = (limit: number): SharedMode => ({ exclusive: false, limit })

/** A store on a connection of its own: a separate "process" as far as the server can tell. */
async function processStore(isolation?: string): Promise<MysqlStore> {
  const connection = await createTestConnection()
  connections.push(connection)
  if (isolation !== undefined) await connection.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${isolation}`)
  return mysqlStore({ connection, tableName, pruneInterval: false })
}

function tokenOf(result: AcquireResult): number {
  if (!result.acquired) throw new Error(`not granted: ${JSON.stringify(result)}`)
  return result.fencingToken
}

function positionOf(result: AcquireResult): number | undefined {
  if (result.acquired) throw new Error('granted, expected a refusal')
  return result.position
}

async function rowOf(key: string): Promise<{ state: string; token: number } | undefined> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT state, fencing_token FROM \`${tableName}_shared\` WHERE key_hash = ?`,
    [keyHash(toBytes(key))],
  )
  const row = rows[0]
  return row === undefined ? undefined : { state: (row.state as Buffer).toString('utf8'), token: Number(row.fencing_token) }
}

// Connections end with the test that opened them: the server's max_connections is shared with other runs.
afterEach(async () => {
  await Promise.all(connections.splice(0).map((each) => each.end()))
})

afterAll(async () => {
  await store.close()
  await dropTables(pool, tableName)
  await pool.end()
})

describe('MySQL shared locks', () => {
  test('a semaphore grants up to its limit, with strictly increasing tokens across modes', async () => {
    const key = newKey()
    const tokens = [
      tokenOf(await store.shared.acquire(key, 'a', permits(2), TTL)),
      tokenOf(await store.shared.acquire(key, 'b', permits(2), TTL)),
    ]
    expect((await store.shared.acquire(key, 'c', permits(2), TTL)).acquired).toBe(false)
    expect(await store.shared.isLocked(key, permits(2))).toBe(true)
    expect(await store.shared.isLocked(key, permits(3))).toBe(false)
    expect(await store.shared.release(key, 'a', permits(2))).toBe(true)
    expect(await store.shared.release(key, 'a', permits(2))).toBe(false)
    tokens.push(tokenOf(await store.shared.acquire(key, 'c', permits(2), TTL)))
    await store.shared.forceRelease(key, READ)
    expect(await store.shared.isLocked(key, WRITE)).toBe(false)
    tokens.push(tokenOf(await store.shared.acquire(key, 'w', WRITE, TTL)))
    expect(tokens).toEqual([...tokens].sort((x, y) => x - y))
    expect(new Set(tokens).size).toBe(tokens.length)
  })

  test('each request is judged by its own limit: a smaller limit is refused where a larger one is granted', async () => {
    const key = newKey()
    tokenOf(await store.shared.acquire(key, 'a', permits(3), TTL))
    tokenOf(await store.shared.acquire(key, 'b', permits(3), TTL))
    expect((await store.shared.acquire(key, 'c', permits(2), TTL)).acquired).toBe(false)
    tokenOf(await store.shared.acquire(key, 'c', permits(3), TTL))
    expect((await store.shared.acquire(key, 'd', permits(3), TTL)).acquired).toBe(false)
  })

  test('an expired holder does not count, and cannot release or extend once its slot is taken again', async () => {
    const key = newKey()
    tokenOf(await store.shared.acquire(key, 'stale', permits(1), 150))
    expect((await store.shared.acquire(key, 'fresh', permits(1), TTL)).acquired).toBe(false)
    await sleep(300)
    expect(await store.shared.isLocked(key, permits(1))).toBe(false)
    tokenOf(await store.shared.acquire(key, 'fresh', permits(1), TTL))
    expect(await store.shared.release(key, 'stale', permits(1))).toBe(false)
    expect(await store.shared.extend(key, 'stale', permits(1), TTL)).toBe(false)
    expect(await store.shared.isLocked(key, permits(1))).toBe(true)
    expect(await store.shared.release(key, 'fresh', permits(1))).toBe(true)
  })

  test('a stale writer cannot release the writer granted after it', async () => {
    const key = newKey()
    const first = tokenOf(await store.shared.acquire(key, 'w1', WRITE, 150))
    await sleep(300)
    const second = tokenOf(await store.shared.acquire(key, 'w2', WRITE, TTL))
    expect(second).toBeGreaterThan(first)
    expect(await store.shared.release(key, 'w1', WRITE)).toBe(false)
    expect(await store.shared.isLocked(key, WRITE)).toBe(true)
    // Same owner, other exclusivity: not its holding either.
    expect(await store.shared.release(key, 'w2', READ)).toBe(false)
    expect(await store.shared.release(key, 'w2', WRITE)).toBe(true)
  })

  test('release, extend and re-acquire by an owner that holds: only with its own exclusivity, never re-entrant', async () => {
    const key = newKey()
    tokenOf(await store.shared.acquire(key, 'r', READ, 200))
    expect((await store.shared.acquire(key, 'r', READ, TTL)).acquired).toBe(false)
    expect(await store.shared.extend(key, 'r', WRITE, TTL)).toBe(false)
    expect(await store.shared.extend(key, 'r', READ, TTL)).toBe(true)
    await sleep(350)
    // Extended on the server's clock: still held after the first lease would have ended.
    expect(await store.shared.isLocked(key, WRITE)).toBe(true)
    expect(await store.shared.extend(key, 'r', READ, null)).toBe(true)
    expect(await store.shared.release(key, 'r', READ)).toBe(true)
  })

  test('a waiting writer blocks readers that come later; its place is granted first', async () => {
    const key = newKey()
    tokenOf(await store.shared.acquire(key, 'r1', READ, TTL))
    expect(positionOf(await store.shared.acquire(key, 'w', WRITE, TTL, { lease: TTL }))).toBe(0)
    expect((await store.shared.acquire(key, 'r2', READ, TTL)).acquired).toBe(false)
    expect(positionOf(await store.shared.acquire(key, 'r2', READ, TTL, { lease: TTL }))).toBe(1)
    // Readers hold the key, a writer does not: `read.isLocked()` is false, `write.isLocked()` true.
    expect(await store.shared.isLocked(key, READ)).toBe(false)
    expect(await store.shared.isLocked(key, WRITE)).toBe(true)
    expect(await store.shared.release(key, 'r1', READ)).toBe(true)
    expect((await store.shared.acquire(key, 'r2', READ, TTL, { lease: TTL })).acquired).toBe(false)
    const writer = tokenOf(await store.shared.acquire(key, 'w', WRITE, TTL, { lease: TTL }))
    expect(positionOf(await store.shared.acquire(key, 'r2', READ, TTL, { lease: TTL }))).toBe(0)
    expect(await store.shared.isLocked(key, READ)).toBe(true)
    expect(await store.shared.release(key, 'w', WRITE)).toBe(true)
    expect(tokenOf(await store.shared.acquire(key, 'r2', READ, TTL, { lease: TTL }))).toBeGreaterThan(writer)
  })

  test('a dead place is skipped, and one that left holds up nobody', async () => {
    const key = newKey()
    tokenOf(await store.shared.acquire(key, 'r1', READ, TTL))
    positionOf(await store.shared.acquire(key, 'w', WRITE, TTL, { lease: 150 }))
    positionOf(await store.shared.acquire(key, 'w2', WRITE, TTL, { lease: TTL }))
    expect((await store.shared.acquire(key, 'r2', READ, TTL)).acquired).toBe(false)
    await sleep(300)
    // w's place died: w2 is now first.
    expect(positionOf(await store.shared.acquire(key, 'w2', WRITE, TTL, { lease: TTL }))).toBe(0)
    await store.shared.leaveQueue(key, 'w2')
    await store.shared.leaveQueue(key, 'w2')
    tokenOf(await store.shared.acquire(key, 'r2', READ, TTL))
    expect((await rowOf(key))?.state).not.toContain('"w"')
  })

  test('permits queued ahead count against the limit of a later permit', async () => {
    const key = newKey()
    tokenOf(await store.shared.acquire(key, 'a', permits(2), TTL))
    tokenOf(await store.shared.acquire(key, 'b', permits(2), TTL))
    expect(positionOf(await store.shared.acquire(key, 'c', permits(2), TTL, { lease: TTL }))).toBe(0)
    await store.shared.release(key, 'a', permits(2))
    // One slot free, but c waits ahead of d.
    expect((await store.shared.acquire(key, 'd', permits(2), TTL)).acquired).toBe(false)
    tokenOf(await store.shared.acquire(key, 'c', permits(2), TTL, { lease: TTL }))
  })

  test('force release: exclusive ends the writer only, shared ends every reader', async () => {
    const key = newKey()
    tokenOf(await store.shared.acquire(key, 'w', WRITE, null))
    await store.shared.forceRelease(key, READ)
    expect(await store.shared.isLocked(key, WRITE)).toBe(true)
    await store.shared.forceRelease(key, WRITE)
    expect(await store.shared.isLocked(key, WRITE)).toBe(false)
    tokenOf(await store.shared.acquire(key, 'r1', READ, null))
    tokenOf(await store.shared.acquire(key, 'r2', READ, null))
    await store.shared.forceRelease(key, WRITE)
    expect(await store.shared.isLocked(key, WRITE)).toBe(true)
    await store.shared.forceRelease(key, READ)
    expect(await store.shared.isLocked(key, WRITE)).toBe(false)
  })

  test('never more than the limit under 20 concurrent connections, first use of the key included', async () => {
    const key = newKey()
    const isolations = ['REPEATABLE READ', 'READ COMMITTED', 'SERIALIZABLE', 'REPEATABLE READ']
    const stores = await Promise.all(Array.from({ length: 20 }, (_, i) => processStore(isolations[i % isolations.length])))
    const allTokens: number[] = []
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(stores.map((each, i) => each.shared.acquire(key, `o${i}`, permits(3), TTL)))
      const granted = results.flatMap((result, i) => (result.acquired ? [{ i, token: result.fencingToken }] : []))
      expect(granted).toHaveLength(3)
      allTokens.push(...granted.map((each) => each.token))
      const released = await Promise.all(granted.map(({ i }) => stores[i]!.shared.release(key, `o${i}`, permits(3))))
      expect(released).toEqual([true, true, true])
    }
    expect(new Set(allTokens).size).toBe(allTokens.length)
    await Promise.all(stores.map((each) => each.close()))
  })

  test('never a reader beside a writer under concurrent connections', async () => {
    const key = newKey()
    const stores = await Promise.all(Array.from({ length: 8 }, () => processStore()))
    for (let round = 0; round < 4; round++) {
      const modes = stores.map((_, i) => ((i + round) % 4 === 0 ? WRITE : READ))
      const results = await Promise.all(stores.map((each, i) => each.shared.acquire(key, `o${i}`, modes[i]!, TTL)))
      const writers = results.filter((result, i) => result.acquired && modes[i]!.exclusive).length
      const readers = results.filter((result, i) => result.acquired && !modes[i]!.exclusive).length
      expect(writers === 0 || (writers === 1 && readers === 0)).toBe(true)
      expect(writers + readers).toBeGreaterThan(0)
      await Promise.all(stores.map((each, i) => (results[i]!.acquired ? each.shared.release(key, `o${i}`, modes[i]!) : null)))
    }
  })

  test('pruning deletes an idle key, and its tokens keep rising after it comes back', async () => {
    const key = newKey()
    const first = tokenOf(await store.shared.acquire(key, 'a', READ, TTL))
    positionOf(await store.shared.acquire(key, 'w', WRITE, TTL, { lease: 150 }))
    await store.shared.release(key, 'a', READ)
    // No holder, but a live place keeps the row.
    await store.pruneExpired()
    expect(await rowOf(key)).toBeDefined()
    await sleep(300)
    await store.pruneExpired()
    expect(await rowOf(key)).toBeUndefined()
    expect(tokenOf(await store.shared.acquire(key, 'c', READ, TTL))).toBeGreaterThan(first + 1)
  })

  test('a lone connection carries mutex and shared operations side by side', async () => {
    const lone = await processStore()
    const key = newKey()
    const mutexKeys = Array.from({ length: 5 }, newKey)
    // Started together: mysql2 would interleave them on the session if the store did not queue them.
    const [shared, mutexes] = await Promise.all([
      Promise.all(Array.from({ length: 6 }, (_, i) => lone.shared.acquire(key, `p${i}`, permits(2), TTL))),
      Promise.all(mutexKeys.map((each) => lone.acquire(each, 'm', TTL))),
    ])
    expect(shared.filter((each) => each.acquired)).toHaveLength(2)
    expect(mutexes.every((each) => each.acquired)).toBe(true)
    // Committed, as another session sees.
    expect(await store.shared.isLocked(key, permits(2))).toBe(true)
    for (const each of mutexKeys) expect(await store.isLocked(each)).toBe(true)
  })

  test('uncontended: one plain read, plus one write when something changes, and no transaction', async () => {
    const connection = await createTestConnection()
    connections.push(connection)
    const lone = mysqlStore({ connection, tableName, pruneInterval: false })
    const key = newKey()
    await lone.shared.isLocked(newKey(), READ) // creates the tables and prepares the first statement
    const counters = async () => {
      const [rows] = await connection.query<RowDataPacket[]>(
        "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_execute', 'Com_begin', 'Com_commit')",
      )
      return Object.fromEntries(rows.map((row) => [row.Variable_name as string, Number(row.Value)]))
    }
    const costOf = async (operation: () => Promise<unknown>) => {
      const before = await counters()
      await operation()
      const after = await counters()
      return [after.Com_stmt_execute! - before.Com_stmt_execute!, after.Com_begin! - before.Com_begin!]
    }
    expect(await costOf(() => lone.shared.acquire(key, 'a', permits(1), TTL))).toEqual([2, 0])
    expect(await costOf(() => lone.shared.acquire(key, 'b', permits(1), TTL))).toEqual([1, 0])
    expect(await costOf(() => lone.shared.acquire(key, 'b', permits(1), TTL, { lease: TTL }))).toEqual([2, 0])
    expect(await costOf(() => lone.shared.isLocked(key, permits(1)))).toEqual([1, 0])
    expect(await costOf(() => lone.shared.extend(key, 'a', permits(1), TTL))).toEqual([2, 0])
    expect(await costOf(() => lone.shared.release(key, 'a', permits(1)))).toEqual([2, 0])
    expect(await costOf(() => lone.shared.release(key, 'a', permits(1)))).toEqual([1, 0])
  })

  test('a write that loses to another session is decided again under the row lock', async () => {
    const key = newKey()
    tokenOf(await store.shared.acquire(key, 'a', permits(1), TTL))
    // Another session holds the row lock and changes the row while our write waits on it.
    const other = await createTestConnection()
    connections.push(other)
    await other.query('START TRANSACTION')
    await other.query(`SELECT 1 FROM \`${tableName}_shared\` WHERE key_hash = ? FOR UPDATE`, [keyHash(toBytes(key))])
    const pending = store.shared.release(key, 'a', permits(1))
    await sleep(100)
    await other.query(`UPDATE \`${tableName}_shared\` SET version = version + 1 WHERE key_hash = ?`, [keyHash(toBytes(key))])
    await other.query('COMMIT')
    expect(await pending).toBe(true)
    expect(await store.shared.isLocked(key, permits(1))).toBe(false)
  })

  test('leases up to 2^53-1 ms hold, extend and release', async () => {
    const key = newKey()
    const huge = Number.MAX_SAFE_INTEGER
    tokenOf(await store.shared.acquire(key, 'a', READ, huge))
    const refused = await store.shared.acquire(key, 'w', WRITE, TTL)
    expect(refused.acquired).toBe(false)
    expect(await store.shared.extend(key, 'a', READ, huge)).toBe(true)
    expect(await store.shared.isLocked(key, WRITE)).toBe(true)
    expect(await store.shared.release(key, 'a', READ)).toBe(true)
    tokenOf(await store.shared.acquire(key, 'w', WRITE, TTL))
  })

  test('tokens never repeat or go down while pruning runs against churning keys', async () => {
    const keys = [newKey(), newKey(), newKey()]
    const workers = await Promise.all(Array.from({ length: 6 }, () => processStore()))
    const seen = new Map<string, number[]>(keys.map((key) => [key, []]))
    let stop = false
    let pruned = 0
    const pruning = (async () => {
      while (!stop) pruned += await store.pruneExpired()
    })()
    await Promise.all(
      workers.map(async (worker, w) => {
        const key = keys[w % keys.length]!
        let last = 0
        for (let round = 0; round < 15; round++) {
          const mode = round % 3 === 0 ? WRITE : permits(2)
          const result = await worker.shared.acquire(key, `w${w}`, mode, TTL)
          if (!result.acquired) continue
          expect(result.fencingToken).toBeGreaterThan(last)
          last = result.fencingToken
          seen.get(key)!.push(result.fencingToken)
          expect(await worker.shared.release(key, `w${w}`, mode)).toBe(true)
        }
      }),
    )
    stop = true
    await pruning
    for (const tokens of seen.values()) expect(new Set(tokens).size).toBe(tokens.length)
    // The rows really went and came back meanwhile.
    expect(pruned).toBeGreaterThan(0)
  })

  test('a corrupt row is a storage error, never "not acquired"', async () => {
    const key = newKey()
    tokenOf(await store.shared.acquire(key, 'a', READ, TTL))
    await pool.query(`UPDATE \`${tableName}_shared\` SET state = 'not json' WHERE key_hash = ?`, [keyHash(toBytes(key))])
    await expect(store.shared.acquire(key, 'b', READ, TTL)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
    await expect(store.shared.release(key, 'a', READ)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
    await expect(store.shared.isLocked(key, READ)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
  })

  test('without autoCreateTable, a missing shared table fails shared calls but not mutexes or pruning', async () => {
    const bare = uniqueTableName('shared_bare')
    const creator = mysqlStore({ connection: pool, tableName: bare, pruneInterval: false })
    await creator.acquire(newKey(), 'm', TTL) // the mutex tables only
    const manual = mysqlStore({ connection: pool, tableName: bare, autoCreateTable: false, pruneInterval: false })
    try {
      await expect(manual.shared.acquire(newKey(), 'a', READ, TTL)).rejects.toThrow(errors.E_LOCK_STORAGE_ERROR)
      expect((await manual.acquire(newKey(), 'm', TTL)).acquired).toBe(true)
      expect(await manual.pruneExpired()).toBeGreaterThanOrEqual(0)
    } finally {
      await dropTables(pool, bare)
    }
  })

  test('a table name too long for its shared table still serves mutexes, and says why shared locks fail', async () => {
    const longStore = mysqlStore({ connection: pool, tableName: `t${'x'.repeat(57)}`, autoCreateTable: false })
    await expect(longStore.shared.acquire(newKey(), 'a', READ, TTL)).rejects.toThrow(errors.E_INVALID_ARGUMENT)
    await longStore.close()
  })

  test('an owner with a lone surrogate or a quote is kept exactly', async () => {
    const key = newKey()
    const owner = 'a"\ud800b\\'
    tokenOf(await store.shared.acquire(key, owner, READ, TTL))
    expect(await store.shared.release(key, 'a"\ufffdb\\', READ)).toBe(false)
    expect(await store.shared.release(key, owner, READ)).toBe(true)
  })
})
