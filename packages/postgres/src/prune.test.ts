import type { AcquireResult } from '@verrou/core'
import { afterAll, describe, expect, test } from 'vitest'
import { createPool, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'
import { pruneLockKeys, resolveTableNames } from './table_name.js'

const pool = createPool()
const tables: string[] = []

function freshTable(): string {
  const name = uniqueTableName('verrou_prune')
  tables.push(name)
  return name
}

afterAll(async () => {
  for (const table of tables) await dropTable(pool, table)
  await pool.end()
})

async function rowCount(tableName: string): Promise<number> {
  return (await pool.query(`SELECT count(*)::int AS n FROM "${tableName}"`)).rows[0].n
}

function tokenOf(result: Awaited<ReturnType<PostgresStore['acquire']>>): number {
  if (!result.acquired) throw new Error('expected the lock to be acquired')
  return result.fencingToken
}

describe('housekeeping', () => {
  test('pruneExpired deletes only rows whose lease ended more than pruneAfter ago; held rows stay', async () => {
    const tableName = freshTable()
    const store = new PostgresStore({ connection: pool, tableName, pruneAfter: 200, pruneInterval: false, listen: false })
    const released = uniqueKey('released')
    const expired = uniqueKey('expired')
    const held = uniqueKey('held')
    const forever = uniqueKey('forever')
    await store.acquire(released, 'a', 60_000)
    await store.release(released, 'a')
    await store.acquire(expired, 'a', 50)
    await store.acquire(held, 'a', 60_000)
    await store.acquire(forever, 'a', null)

    expect(await store.pruneExpired()).toBe(0) // ended less than 200 ms ago: kept
    await sleep(300)
    expect(await store.pruneExpired()).toBe(2)
    expect(await rowCount(tableName)).toBe(2)
    expect(await store.isLocked(held)).toBe(true)
    expect(await store.isLocked(forever)).toBe(true)
  })

  test('fencing tokens keep increasing for a key whose row was pruned', async () => {
    const tableName = freshTable()
    const store = new PostgresStore({ connection: pool, tableName, pruneAfter: 0, pruneInterval: false, listen: false })
    const key = uniqueKey()
    const before = tokenOf(await store.acquire(key, 'a', 60_000))
    await store.release(key, 'a')
    await sleep(5)
    expect(await store.pruneExpired()).toBe(1)
    expect(await rowCount(tableName)).toBe(0)
    const after = tokenOf(await store.acquire(key, 'b', 60_000))
    expect(after).toBeGreaterThan(before)
  })

  /**
   * Runs `body` with an insert of `owner` stalled at the worst point, made certain: a BEFORE INSERT trigger
   * runs after the row and its token are built and before the insert looks for the key's row, and for
   * `owner` it waits on an advisory lock held here. `body` gets the stalled acquire and `open()`, which lets
   * it go on.
   */
  async function withStalledInsert(
    tableName: string,
    store: PostgresStore,
    owner: string,
    body: (stalled: { key: string; result: Promise<AcquireResult>; open: () => Promise<void> }) => Promise<void>,
  ): Promise<void> {
    await store.isLocked(uniqueKey()) // creates the table
    const gate = 424_242
    const gateFunction = `"${tableName}_gate"`
    await pool.query(`CREATE FUNCTION ${gateFunction}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.owner = convert_to('${owner}', 'UTF8') THEN PERFORM pg_advisory_xact_lock_shared(${gate}); END IF;
        RETURN NEW;
      END $$`)
    await pool.query(`CREATE TRIGGER gate BEFORE INSERT ON "${tableName}" FOR EACH ROW EXECUTE FUNCTION ${gateFunction}()`)
    const gatekeeper = await pool.connect()
    try {
      await gatekeeper.query(`BEGIN; SELECT pg_advisory_xact_lock(${gate})`)
      const key = uniqueKey('stalled')
      const result = store.acquire(key, owner, 60_000)
      const waitingAtGate = `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted`
      const waiting = async () => (await pool.query(waitingAtGate, [gate])).rows[0].n
      for (let tries = 0; (await waiting()) === 0; tries++) {
        if (tries > 500) throw new Error('the stalled insert never reached the gate')
        await sleep(10)
      }
      await body({ key, result, open: async () => void (await gatekeeper.query('COMMIT')) })
    } finally {
      await gatekeeper.query('ROLLBACK').catch(() => {})
      gatekeeper.release()
      await pool.query(`DROP TRIGGER IF EXISTS gate ON "${tableName}"; DROP FUNCTION IF EXISTS ${gateFunction}()`)
    }
  }

  /** Meanwhile the key is created, granted with a later token, released and its row pruned: that token. */
  async function grantReleaseAndPrune(store: PostgresStore, key: string): Promise<number> {
    const earlier = tokenOf(await store.acquire(key, 'earlier', 60_000))
    expect(await store.release(key, 'earlier')).toBe(true)
    await sleep(5)
    expect(await store.pruneExpired()).toBe(1)
    return earlier
  }

  test('an insert that stalls between drawing its token and inserting, while the key is granted and pruned, still gets a token above that grant', async () => {
    const tableName = freshTable()
    const store = new PostgresStore({ connection: pool, tableName, pruneAfter: 0, pruneInterval: false, listen: false })
    await withStalledInsert(tableName, store, 'stalled', async (stalled) => {
      const earlier = await grantReleaseAndPrune(store, stalled.key)
      await stalled.open()
      expect(tokenOf(await stalled.result)).toBeGreaterThan(earlier)
      expect(await store.isLocked(stalled.key)).toBe(true)
    })
  })

  test('such a grant, force released before its token is drawn again, is "not acquired", never the stale token', async () => {
    const tableName = freshTable()
    // The stalled store's own pool holds its redraw back until the key was force released.
    const own = createPool()
    const send = own.query.bind(own) as (query: { name?: string }) => Promise<unknown>
    let redrawSent: () => void = () => {}
    const redrawReached = new Promise<void>((resolve) => {
      redrawSent = resolve
    })
    let letRedrawGo: () => void = () => {}
    const redrawMayGo = new Promise<void>((resolve) => {
      letRedrawGo = resolve
    })
    ;(own as unknown as { query: typeof send }).query = async (query) => {
      if (query.name?.startsWith('verrou_redraw_')) {
        redrawSent()
        await redrawMayGo
      }
      return send(query)
    }
    const stalledStore = new PostgresStore({ connection: own, tableName, pruneAfter: 0, pruneInterval: false, listen: false })
    const store = new PostgresStore({ connection: pool, tableName, pruneAfter: 0, pruneInterval: false, listen: false })
    try {
      await withStalledInsert(tableName, stalledStore, 'stalled', async (stalled) => {
        const earlier = await grantReleaseAndPrune(store, stalled.key)
        await stalled.open()
        await redrawReached
        await store.forceRelease(stalled.key)
        letRedrawGo()
        expect(await stalled.result).toEqual({ acquired: false })
        expect(tokenOf(await store.acquire(stalled.key, 'next', 60_000))).toBeGreaterThan(earlier)
      })
    } finally {
      letRedrawGo()
      await own.end()
    }
  })

  test('fresh keys granted side by side while no prune runs never draw their token twice', async () => {
    const tableName = freshTable()
    // Eight sessions, so that tokens are drawn by other grants while each insert runs: comparing with the
    // token sequence, as before the prune mark, sent a second statement for about one in ten of them.
    const own = createPool({ max: 8 })
    const send = own.query.bind(own) as (query: unknown) => Promise<unknown>
    const sent: string[] = []
    ;(own as unknown as { query: typeof send }).query = (query) => {
      sent.push((query as { name?: string }).name ?? 'unnamed')
      return send(query)
    }
    const store = new PostgresStore({ connection: own, tableName, pruneInterval: false, listen: false })
    try {
      const tokens: number[] = []
      for (let wave = 0; wave < 25; wave++) {
        const keys = Array.from({ length: 16 }, () => uniqueKey('side'))
        tokens.push(...(await Promise.all(keys.map(async (key) => tokenOf(await store.acquire(key, 'a', 60_000))))))
      }
      expect(new Set(tokens).size).toBe(400)
      expect(sent.filter((name) => name.startsWith('verrou_redraw_'))).toEqual([])
    } finally {
      await own.end()
    }
  })

  test('a prune raises the mark to at least the token of every row it deletes, and one with nothing to delete leaves it', async () => {
    const tableName = freshTable()
    const store = new PostgresStore({ connection: pool, tableName, pruneAfter: 0, pruneInterval: false, listen: false })
    const mark = async () =>
      Number((await pool.query(`SELECT pg_sequence_last_value('"${tableName}_prune_seq"'::regclass) AS v`)).rows[0].v ?? 0)
    const key = uniqueKey()
    await store.acquire(uniqueKey(), 'first', 60_000) // creates the table
    expect(await mark()).toBe(0)
    const token = tokenOf(await store.acquire(key, 'a', 60_000))
    await store.release(key, 'a')
    await sleep(5)
    expect(await store.pruneExpired()).toBe(1)
    const raised = await mark()
    expect(raised).toBeGreaterThanOrEqual(token)
    // A later prune with nothing to delete leaves it where it was; one that deletes raises it again.
    expect(await store.pruneExpired()).toBe(0)
    expect(await mark()).toBe(raised)
    const later = uniqueKey()
    const laterToken = tokenOf(await store.acquire(later, 'a', 60_000))
    await store.release(later, 'a')
    await sleep(5)
    expect(await store.pruneExpired()).toBe(1)
    expect(await mark()).toBeGreaterThanOrEqual(laterToken)
    // A new key's first grant is above the mark, so it takes no second statement and its token still rises.
    expect(tokenOf(await store.acquire(uniqueKey(), 'b', 60_000))).toBeGreaterThan(await mark())
  })

  test('prunes of a table take turns: one waits while another holds the prune lock of the table', async () => {
    const tableName = freshTable()
    const store = new PostgresStore({ connection: pool, tableName, pruneAfter: 0, pruneInterval: false, listen: false })
    const key = uniqueKey()
    await store.acquire(key, 'a', 60_000)
    await store.release(key, 'a')
    await sleep(5)
    // Another prune in the middle of its transaction, as seen by this one: the lock it would hold.
    const other = createPool({ max: 1 })
    const client = await other.connect()
    try {
      const [classId, objectId] = pruneLockKeys(resolveTableNames(tableName))
      await client.query('BEGIN')
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [classId, objectId])
      let settled = false
      const pruning = store.pruneExpired().finally(() => {
        settled = true
      })
      await sleep(300)
      expect(settled).toBe(false)
      expect(await rowCount(tableName)).toBe(1)
      await client.query('COMMIT')
      expect(await pruning).toBe(1)
    } finally {
      client.release()
      await other.end()
    }
  })

  test('each call deletes at most pruneBatchSize rows', async () => {
    const tableName = freshTable()
    const store = new PostgresStore({
      connection: pool,
      tableName,
      pruneAfter: 0,
      pruneInterval: false,
      pruneBatchSize: 3,
      listen: false,
    })
    for (let i = 0; i < 7; i++) {
      const key = uniqueKey()
      await store.acquire(key, 'a', 60_000)
      await store.release(key, 'a')
    }
    await sleep(5)
    expect(await store.pruneExpired()).toBe(3)
    expect(await store.pruneExpired()).toBe(3)
    expect(await store.pruneExpired()).toBe(1)
    expect(await store.pruneExpired()).toBe(0)
  })

  test('housekeeping runs in the background from the first operation: drains a backlog at once, then every pruneInterval, until close()', async () => {
    const tableName = freshTable()
    const seed = new PostgresStore({ connection: pool, tableName, pruneInterval: false, listen: false })
    const endRows = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const key = uniqueKey()
        await seed.acquire(key, 'a', 60_000)
        await seed.release(key, 'a')
      }
    }
    await endRows(5)
    const store = new PostgresStore({
      connection: pool,
      tableName,
      pruneAfter: 0,
      pruneInterval: 200,
      pruneBatchSize: 2,
      listen: false,
    })
    // Not even an acquire: any first operation starts it, and full batches follow one another at once.
    await store.isLocked(uniqueKey())
    await waitForRows(tableName, 0)
    // Rows that end later go without any further call on this store.
    await endRows(3)
    await waitForRows(tableName, 0)
    await store.close()
    await endRows(1)
    await sleep(600)
    expect(await rowCount(tableName)).toBe(1)

    // The pause between runs is pruneInterval: a row that ends just after a run waits for the next.
    const spaced = new PostgresStore({ connection: pool, tableName, pruneAfter: 0, pruneInterval: 60_000, listen: false })
    await spaced.isLocked(uniqueKey())
    await waitForRows(tableName, 0)
    await endRows(1)
    await sleep(300)
    expect(await rowCount(tableName)).toBe(1)
    await spaced.close()
  })

  test('housekeeping stops by itself once the pool it uses is ended', async () => {
    const own = createPool()
    const store = new PostgresStore({ connection: own, tableName: freshTable(), pruneInterval: 0, listen: false })
    let runs = 0
    const prune = store.pruneExpired.bind(store)
    store.pruneExpired = () => {
      runs++
      return prune()
    }
    await store.isLocked(uniqueKey())
    await sleep(100)
    await own.end()
    await sleep(50)
    const afterEnd = runs
    // A failed run pauses a second: left running, it would have tried two or three more times by now.
    await sleep(2_500)
    // At most the run that was in flight when the pool ended.
    expect(runs - afterEnd).toBeLessThanOrEqual(1)
  })
})

/** Waits for a background run to have deleted down to `expected` rows and to have finished. */
async function waitForRows(tableName: string, expected: number): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    if ((await rowCount(tableName)) === expected) {
      // The delete is visible a moment before the store has read its reply and counted the run as over.
      await sleep(20)
      return
    }
    await sleep(10)
  }
  expect(await rowCount(tableName)).toBe(expected)
}
