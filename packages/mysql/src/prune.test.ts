import { randomUUID } from 'node:crypto'
import type { RowDataPacket } from 'mysql2/promise'
import { afterAll, describe, expect, test, vi } from 'vitest'
import { createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { mysqlStore } from './index.js'
import { keyHash, toBytes } from './key_bytes.js'
import { ROW_KEPT_MS } from './sql.js'

const pool = createTestPool({ connectionLimit: 20 })
const tables: string[] = []
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const newKey = () => `verrou:mysql:${randomUUID()}`

function newTable(): string {
  const name = uniqueTableName('prune')
  tables.push(name)
  return name
}

async function rowExists(tableName: string, key: string): Promise<boolean> {
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT 1 FROM \`${tableName}\` WHERE key_hash = ?`, [keyHash(toBytes(key))])
  return rows.length > 0
}

afterAll(async () => {
  for (const name of tables) await dropTables(pool, name)
  await pool.end()
})

describe('pruning ended leases', () => {
  test('deletes released, force-released and expired rows, keeps live ones, and tokens keep increasing', async () => {
    const tableName = newTable()
    const store = mysqlStore({ connection: pool, tableName, pruneInterval: false })
    const [released, forced, expired, held, permanent] = [newKey(), newKey(), newKey(), newKey(), newKey()]
    const tokens = new Map<string, number>()
    const take = async (key: string, ttl: number | null) => {
      const result = await store.acquire(key, 'o', ttl)
      if (!result.acquired) throw new Error(`${key} not acquired`)
      tokens.set(key, result.fencingToken)
      return result.fencingToken
    }
    for (let round = 0; round < 3; round++) {
      await take(released, 10_000)
      await store.release(released, 'o')
    }
    await take(forced, 10_000)
    await store.forceRelease(forced)
    await take(expired, 50)
    await take(held, 10_000)
    await take(permanent, null)
    await sleep(100)
    // Ended less than ROW_KEPT_MS ago: kept, so a store that just saw a row can count on it.
    expect(await store.pruneExpired()).toBe(0)
    for (const key of [released, forced, expired]) expect(await rowExists(tableName, key)).toBe(true)
    await sleep(ROW_KEPT_MS)

    expect(await store.pruneExpired()).toBe(3)
    for (const key of [released, forced, expired]) expect(await rowExists(tableName, key)).toBe(false)
    for (const key of [held, permanent]) expect(await rowExists(tableName, key)).toBe(true)
    expect(await store.isLocked(held)).toBe(true)
    expect(await store.isLocked(permanent)).toBe(true)

    // A pruned key starts above every token it ever had.
    for (const key of [released, forced, expired]) {
      const before = tokens.get(key)!
      expect(await take(key, 10_000)).toBeGreaterThan(before)
    }
    expect(await store.pruneExpired()).toBe(0)
  })

  test('pruning while many workers churn on the same keys never repeats or lowers a token', async () => {
    const tableName = newTable()
    const store = mysqlStore({ connection: pool, tableName, pruneInterval: false })
    const keys = Array.from({ length: 40 }, newKey)
    // When each acquisition was sent and answered, on this process's clock.
    const grants = new Map<string, Array<{ token: number; sent: number; answered: number }>>(keys.map((key) => [key, []]))
    const take = async (key: string, owner: string) => {
      const sent = performance.now()
      const result = await store.acquire(key, owner, 30)
      if (result.acquired) grants.get(key)!.push({ token: result.fencingToken, sent, answered: performance.now() })
      return result.acquired
    }
    // Every row has ended ROW_KEPT_MS ago when the churn starts, so the pruner races the workers for each.
    for (const key of keys) {
      expect(await take(key, 'seed')).toBe(true)
      await store.release(key, 'seed')
    }
    await sleep(ROW_KEPT_MS + 50)
    const deadline = performance.now() + 1_500
    let pruned = 0
    const worker = async (id: number) => {
      const owner = `worker-${id}`
      for (let visit = id; performance.now() < deadline; visit++) {
        const key = keys[visit % keys.length]!
        if (await take(key, owner)) {
          // Half release, half let the lease run out, so both kinds of ended rows get pruned.
          if (id % 2 === 0) await store.release(key, owner)
          else await sleep(35)
        }
        await sleep(Math.random() * 5)
      }
    }
    const pruner = async () => {
      while (performance.now() < deadline) {
        pruned += await store.pruneExpired()
        await sleep(5)
      }
    }
    await Promise.all([...Array.from({ length: 12 }, (_, id) => worker(id)), pruner()])
    expect(pruned).toBeGreaterThan(0)
    for (const list of grants.values()) {
      expect(list.length).toBeGreaterThan(3)
      expect(new Set(list.map((grant) => grant.token)).size).toBe(list.length)
      // A stalled event loop can deliver answers out of order (a 30 ms lease may end before its holder
      // hears of it), so compare only grants that surely happened one after the other: the first was
      // answered before the second was sent.
      for (const earlier of list) {
        for (const later of list) {
          if (earlier.answered < later.sent) expect(later.token).toBeGreaterThan(earlier.token)
        }
      }
    }
  })

  test('housekeeping runs in the background from the first operation until close(), no acquire needed, and never fails a lock call', async () => {
    const tableName = newTable()
    const endRow = async (store: ReturnType<typeof mysqlStore>) => {
      const key = newKey()
      await store.acquire(key, 'o', 10_000)
      await store.release(key, 'o')
      return key
    }
    const seed = mysqlStore({ connection: pool, tableName, pruneInterval: false })
    const store = mysqlStore({ connection: pool, tableName, pruneInterval: 100 })
    const old = await endRow(seed)
    await store.isLocked(newKey())
    await vi.waitFor(async () => expect(await rowExists(tableName, old)).toBe(false), { timeout: 5_000 })
    // A row that ends later goes without any further call on this store.
    const later = await endRow(seed)
    await vi.waitFor(async () => expect(await rowExists(tableName, later)).toBe(false), { timeout: 5_000 })
    await store.close()
    await store.close()
    const afterClose = await endRow(seed)
    await sleep(ROW_KEPT_MS + 400)
    expect(await rowExists(tableName, afterClose)).toBe(true)

    const spaced = mysqlStore({ connection: pool, tableName, pruneInterval: 60_000 })
    // The first run starts at once; let it finish, then the next is an interval away.
    await spaced.isLocked(newKey())
    await vi.waitFor(async () => expect(await rowExists(tableName, afterClose)).toBe(false), { timeout: 5_000 })
    const ended = await endRow(spaced)
    await sleep(ROW_KEPT_MS + 300)
    expect(await rowExists(tableName, ended)).toBe(true)
    await spaced.close()

    // The floor table is gone: background pruning fails, lock calls that do not need it still answer.
    await pool.query(`DROP TABLE \`${tableName}_floor\``)
    const failing = mysqlStore({ connection: pool, tableName, pruneInterval: 0, autoCreateTable: false })
    const key = newKey()
    await expect(failing.acquire(key, 'o', 1_000)).rejects.toThrow(/acquire/)
    expect(await failing.isLocked(key)).toBe(false)
    await failing.close()
  })

  test('housekeeping stops by itself once the pool it uses is ended', async () => {
    const own = createTestPool()
    const store = mysqlStore({ connection: own, tableName: newTable(), pruneInterval: 0 })
    let runs = 0
    const prune = store.pruneExpired.bind(store)
    store.pruneExpired = () => {
      runs++
      return prune()
    }
    await store.isLocked(newKey())
    await sleep(100)
    await own.end()
    await sleep(50)
    const afterEnd = runs
    // A failed run pauses a second: left running, it would have tried two or three more times by now.
    await sleep(2_500)
    expect(runs - afterEnd).toBeLessThanOrEqual(1)
  })
})
