import type { AcquireResult } from '@verrou/core'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createClient, createPool, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'
import { parseAnnouncement, releasePayload, toStoredBytes } from './text_bytes.js'

/**
 * The wait queue at the driver level, against the real server: each "process" is a store on its own
 * session, so every race below is a race between PostgreSQL sessions.
 */
const tableName = uniqueTableName('verrou_queue')
const pool = createPool()
let admin: pg.Client

beforeAll(async () => {
  admin = await createClient()
})

afterAll(async () => {
  await dropTable(admin, tableName)
  await admin.end()
  await pool.end()
})

/** `count` stores, each on a session of its own. */
async function sessions(count: number, level = 'read committed') {
  const options = level === 'read committed' ? {} : { options: `-c default_transaction_isolation=${level.replace(' ', '\\ ')}` }
  const clients = await Promise.all(Array.from({ length: count }, () => createClient(options)))
  const stores = clients.map((connection) => new PostgresStore({ connection, tableName, listen: false, pruneInterval: false }))
  return {
    stores,
    end: async () => {
      await Promise.all(stores.map((store) => store.close()))
      await Promise.all(clients.map((client) => client.end()))
    },
  }
}

const store = new PostgresStore({ connection: pool, tableName, listen: false, pruneInterval: false })

function tokenOf(result: AcquireResult, who = 'the caller'): number {
  if (!result.acquired) throw new Error(`expected ${who} to be granted the lock`)
  return result.fencingToken
}

function positionOf(result: AcquireResult): number | undefined {
  if (result.acquired) throw new Error('expected a refusal')
  return result.position
}

/** The queue as stored in the row: owners (as strings) and whether each place is live. */
async function storedQueue(key: string): Promise<{ waiter: string; live: boolean }[]> {
  const { rows } = await admin.query(
    `SELECT convert_from(place.waiter, 'UTF8') AS waiter, place.lease_end > clock_timestamp() AS live
     FROM "${tableName}", unnest(waiters, waiter_leases) WITH ORDINALITY AS place(waiter, lease_end, pos)
     WHERE key_hash = sha256($1::bytea) ORDER BY place.pos`,
    [toStoredBytes(key)],
  )
  return rows
}

describe.each(['read committed', 'serializable'])('racing on separate sessions (%s)', (level) => {
  test('16 joiners at once get 16 distinct places and are served in exactly that order, one at a time; bargers never win', async () => {
    const waiters = await sessions(16, level)
    const bargers = await sessions(4, level)
    try {
      const key = uniqueKey('fifo')
      const holder = `${key}:holder`
      let last = tokenOf(await store.acquire(key, holder, 60_000))
      const owners = waiters.stores.map((_, i) => `${key}:waiter-${i}`)
      const join = (i: number) => waiters.stores[i]!.acquire(key, owners[i]!, 60_000, { lease: 30_000 })

      const joined = await Promise.all(owners.map((_, i) => join(i)))
      const positions = joined.map(positionOf)
      expect([...positions].sort((a, b) => a! - b!)).toEqual(owners.map((_, i) => i))
      // Renewing at once, all together, keeps every place.
      expect((await Promise.all(owners.map((_, i) => join(i)))).map(positionOf)).toEqual(positions)
      const order = owners.map((_, i) => i).sort((a, b) => positions[a]! - positions[b]!)

      let current = { store, owner: holder }
      const waiting = new Set(order)
      for (const [served, expected] of order.entries()) {
        expect(await current.store.release(key, current.owner)).toBe(true)
        // Everyone still waiting tries at once, along with newcomers that never queued: exactly the head wins.
        const contenders = [...waiting]
        const [attempts, barging] = await Promise.all([
          Promise.all(contenders.map((i) => join(i))),
          Promise.all(bargers.stores.map((barger, i) => barger.acquire(key, `${key}:barger-${i}`, 60_000))),
        ])
        expect(barging.every((reply) => !reply.acquired)).toBe(true)
        const winners = contenders.filter((_, n) => attempts[n]!.acquired)
        expect(winners).toEqual([expected])
        const token = tokenOf(attempts[contenders.indexOf(expected)]!)
        expect(token).toBeGreaterThan(last)
        last = token
        waiting.delete(expected)
        current = { store: waiters.stores[expected]!, owner: owners[expected]! }
        // The losers kept their places, in order, each moved up by one; the winner's is gone.
        const queue = await storedQueue(key)
        expect(queue.map((place) => place.waiter)).toEqual(order.slice(served + 1).map((i) => owners[i]))
        expect(queue.every((place) => place.live)).toBe(true)
        for (const [n, i] of contenders.entries()) {
          // Before or after the winner's grant, as the two raced.
          if (i !== expected) expect([positions[i]! - served - 1, positions[i]! - served]).toContain(positionOf(attempts[n]!))
        }
      }
      expect(await current.store.release(key, current.owner)).toBe(true)
      expect(await storedQueue(key)).toEqual([])
      tokenOf(await bargers.stores[0]!.acquire(key, `${key}:barger-0`, 60_000), 'a newcomer once the queue is empty')
      await bargers.stores[0]!.release(key, `${key}:barger-0`)
    } finally {
      await waiters.end()
      await bargers.end()
    }
  })
})

test('churn on 8 sessions: never two holders, tokens increase, and nobody is overtaken twice while it waits', async () => {
  const workers = await sessions(8)
  const key = uniqueKey('churn')
  const rounds = 12
  let holding = 0
  let maxHolding = 0
  const grants: { worker: number; token: number; at: number }[] = []
  const overtaken: number[] = []
  try {
    await Promise.all(
      workers.stores.map(async (worker, w) => {
        const owner = `${key}:worker-${w}`
        for (let round = 0; round < rounds; round++) {
          let joinedAt: number | undefined
          let reply = await worker.acquire(key, owner, 60_000, { lease: 10_000 })
          while (!reply.acquired) {
            joinedAt ??= performance.now()
            await sleep(Math.random() * 3)
            reply = await worker.acquire(key, owner, 60_000, { lease: 10_000 })
          }
          holding++
          maxHolding = Math.max(maxHolding, holding)
          const grantedAt = performance.now()
          if (joinedAt !== undefined) {
            // FIFO: between joining and being served, any other worker got the lock at most once (a worker
            // served ahead of us rejoins behind us).
            const counts = new Map<number, number>()
            for (const grant of grants) {
              if (grant.at >= joinedAt) counts.set(grant.worker, (counts.get(grant.worker) ?? 0) + 1)
            }
            overtaken.push(Math.max(0, ...counts.values()))
          }
          grants.push({ worker: w, token: reply.fencingToken, at: grantedAt })
          await sleep(1 + Math.random())
          holding--
          expect(await worker.release(key, owner)).toBe(true)
        }
      }),
    )
  } finally {
    await workers.end()
  }
  expect(maxHolding).toBe(1)
  expect(grants).toHaveLength(8 * rounds)
  const tokens = grants.map((grant) => grant.token)
  expect(tokens).toEqual([...tokens].sort((a, b) => a - b))
  expect(new Set(tokens).size).toBe(tokens.length)
  expect(overtaken.length).toBeGreaterThan(0)
  expect(Math.max(...overtaken)).toBeLessThanOrEqual(1)
  expect(await storedQueue(key)).toEqual([])
})

describe('announcements', () => {
  let listener: pg.Client
  const heard: string[] = []

  beforeAll(async () => {
    listener = await createClient()
    listener.on('notification', (message) => {
      if (message.payload !== undefined) heard.push(message.payload)
    })
    await listener.query(`LISTEN "verrou:${tableName}"`)
  })

  afterAll(async () => {
    await listener.end()
  })

  /** What was sent for `key` since the last call, after giving stragglers time to arrive. */
  async function sentFor(key: string): Promise<(string | undefined)[]> {
    await sleep(150)
    const mine = heard.filter((payload) => parseAnnouncement(payload).keyPayload === releasePayload(key))
    heard.length = 0
    return mine.map((payload) => parseAnnouncement(payload).next)
  }

  test('release and force release send nothing when nobody waits, one notification naming the first live waiter otherwise', async () => {
    const key = uniqueKey('notify')
    tokenOf(await store.acquire(key, 'holder', 60_000))
    expect(await store.release(key, 'holder')).toBe(true)
    tokenOf(await store.acquire(key, 'holder', 60_000))
    await store.forceRelease(key)
    expect(await store.release(key, 'holder')).toBe(false)
    expect(await sentFor(key)).toEqual([])

    // A dead place at the head is skipped: the announcement names the live waiter behind it.
    tokenOf(await store.acquire(key, 'holder', 60_000))
    expect(positionOf(await store.acquire(key, 'dead', 60_000, { lease: 100 }))).toBe(0)
    expect(positionOf(await store.acquire(key, 'live', 60_000, { lease: 60_000 }))).toBe(1)
    await sleep(200)
    expect(await store.release(key, 'holder')).toBe(true)
    expect(await sentFor(key)).toEqual(['live'])

    tokenOf(await store.acquire(key, 'live', 60_000, { lease: 60_000 }), 'the live waiter')
    await store.forceRelease(key)
    expect(await sentFor(key)).toEqual([])

    tokenOf(await store.acquire(key, 'holder', 60_000))
    expect(positionOf(await store.acquire(key, 'next', 60_000, { lease: 60_000 }))).toBe(0)
    await store.forceRelease(key)
    expect(await sentFor(key)).toEqual(['next'])
    await store.leaveQueue(key, 'next')
  })

  test('leaveQueue announces only when the first live waiter leaves a free lock, naming the next', async () => {
    const key = uniqueKey('leave')
    tokenOf(await store.acquire(key, 'holder', 60_000))
    for (const owner of ['a', 'b', 'c', 'd']) await store.acquire(key, owner, 60_000, { lease: 60_000 })
    await store.leaveQueue(key, 'a') // the head, but the lock is held: nobody could take it
    await store.leaveQueue(key, 'c') // not the head
    await store.leaveQueue(key, 'never-joined')
    expect(await sentFor(key)).toEqual([])

    expect(await store.release(key, 'holder')).toBe(true)
    expect(await sentFor(key)).toEqual(['b'])
    await store.leaveQueue(key, 'd') // not the head
    expect(await sentFor(key)).toEqual([])
    await store.leaveQueue(key, 'b') // the head of a free lock: nobody is left to tell
    await store.leaveQueue(key, 'b') // idempotent
    expect(await sentFor(key)).toEqual([])

    // Only dead places are left: the key is free for anyone.
    tokenOf(await store.acquire(key, 'holder', 60_000), 'the holder, with only dead places left')
    for (const owner of ['e', 'f']) await store.acquire(key, owner, 60_000, { lease: 60_000 })
    expect(await store.release(key, 'holder')).toBe(true)
    expect(await sentFor(key)).toEqual(['e'])
    expect((await store.acquire(key, 'newcomer', 60_000)).acquired).toBe(false)
    await store.leaveQueue(key, 'e')
    expect(await sentFor(key)).toEqual(['f'])
    tokenOf(await store.acquire(key, 'f', 60_000, { lease: 60_000 }), 'the waiter announced by the leaving head')
    await store.release(key, 'f')
    expect(await sentFor(key)).toEqual([])
  })

  test('owners are named exactly, whatever their bytes; an owner too long for a payload is announced unnamed', async () => {
    const owners = ['plain', 'with\nnewline', 'nul\0', 'emoji 🔑', 'lone \uD800', 'k:looks-like-a-key', 'x'.repeat(3000)]
    for (const owner of owners) {
      const key = uniqueKey('named')
      tokenOf(await store.acquire(key, 'holder', 60_000))
      await store.acquire(key, owner, 60_000, { lease: 60_000 })
      await store.release(key, 'holder')
      expect(await sentFor(key)).toEqual([owner])
      await store.leaveQueue(key, owner)
    }
    const key = uniqueKey('unnamed')
    tokenOf(await store.acquire(key, 'holder', 60_000))
    await store.acquire(key, 'y'.repeat(3001), 60_000, { lease: 60_000 })
    await store.release(key, 'holder')
    expect(await sentFor(key)).toEqual([undefined])
  })
})

test('a dead head is skipped once its place lease ends on the server clock, not before', async () => {
  const key = uniqueKey('dead-head')
  tokenOf(await store.acquire(key, 'holder', 60_000))
  const joiningAt = performance.now()
  expect(positionOf(await store.acquire(key, 'dead', 60_000, { lease: 400 }))).toBe(0)
  expect(positionOf(await store.acquire(key, 'next', 60_000, { lease: 60_000 }))).toBe(1)
  expect(await store.release(key, 'holder')).toBe(true)
  let reply = await store.acquire(key, 'next', 60_000, { lease: 60_000 })
  while (!reply.acquired && performance.now() - joiningAt < 2_000) {
    expect(reply.position).toBe(1)
    expect((await store.acquire(key, 'newcomer', 60_000)).acquired).toBe(false)
    await sleep(5)
    reply = await store.acquire(key, 'next', 60_000, { lease: 60_000 })
  }
  const waited = performance.now() - joiningAt
  tokenOf(reply, 'the waiter behind the dead head')
  expect(waited).toBeGreaterThanOrEqual(390)
  expect(waited).toBeLessThan(1_000)
  // The grant dropped the dead place along with the winner's own.
  expect(await storedQueue(key)).toEqual([])
  await store.release(key, 'next')
})

test('a caller that would wait takes a free key with no queue in one light statement; a held key or a queue goes on to the full one', async () => {
  const recorded = createPool({ max: 2 })
  const sent: string[] = []
  const query = recorded.query.bind(recorded) as (...args: unknown[]) => unknown
  Object.assign(recorded, {
    query: (config: { name?: string }, ...rest: unknown[]) => {
      if (config.name !== undefined) sent.push(config.name.replace(/_[0-9a-f]{16}$/, ''))
      return query(config, ...rest)
    },
  })
  const light = new PostgresStore({ connection: recorded, tableName, listen: false, pruneInterval: false })
  const waitFor = { lease: 60_000 }
  try {
    // Free (a new key, then a released one): granted by the light statement alone, tokens increasing.
    const key = uniqueKey('light')
    const first = tokenOf(await light.acquire(key, 'a', 60_000, waitFor))
    expect(await light.release(key, 'a')).toBe(true)
    const second = tokenOf(await light.acquire(key, 'a', 60_000, waitFor))
    expect(second).toBeGreaterThan(first)
    expect(sent).toEqual(['verrou_acquire_free', 'verrou_release_unqueued', 'verrou_acquire_free'])

    // Held by another store: the light statement writes nothing, the full one queues the caller.
    const held = uniqueKey('light-held')
    tokenOf(await store.acquire(held, 'holder', 60_000))
    sent.length = 0
    expect(await light.acquire(held, 'b', 60_000, waitFor)).toMatchObject({ acquired: false, position: 0 })
    expect(sent).toEqual(['verrou_acquire_free', 'verrou_acquire_waiting'])
    // Its queue seen, this store's next attempt goes straight to the full statement, and so does every
    // renewal within the place lease, even past the one-second hint.
    sent.length = 0
    expect(await light.acquire(held, 'b', 60_000, waitFor)).toMatchObject({ acquired: false, position: 0 })
    await sleep(1_200)
    expect(await light.acquire(held, 'b', 60_000, waitFor)).toMatchObject({ acquired: false, position: 0 })
    expect(sent).toEqual(['verrou_acquire_waiting', 'verrou_acquire_waiting'])
    await store.release(held, 'holder')
    await light.leaveQueue(held, 'b')

    // Free, with a live waiter queued through another store: no barging past it.
    const queued = uniqueKey('light-queued')
    tokenOf(await store.acquire(queued, 'holder', 60_000))
    expect(await store.acquire(queued, 'waiter', 60_000, waitFor)).toMatchObject({ acquired: false, position: 0 })
    expect(await store.release(queued, 'holder')).toBe(true)
    expect(await store.isLocked(queued)).toBe(false)
    sent.length = 0
    expect(await light.acquire(queued, 'newcomer', 60_000, waitFor)).toMatchObject({ acquired: false, position: 1 })
    expect(sent).toEqual(['verrou_acquire_free', 'verrou_acquire_waiting'])
    expect((await storedQueue(queued)).map((place) => place.waiter)).toEqual(['waiter', 'newcomer'])
    await store.leaveQueue(queued, 'waiter')
    await light.leaveQueue(queued, 'newcomer')

    // A lease that ended, nobody waiting: the light statement takes it over with a higher token.
    const expired = uniqueKey('light-expired')
    const old = tokenOf(await store.acquire(expired, 'holder', 100))
    await sleep(200)
    sent.length = 0
    expect(tokenOf(await light.acquire(expired, 'c', 60_000, waitFor))).toBeGreaterThan(old)
    expect(sent).toEqual(['verrou_acquire_free'])
    expect(await store.release(expired, 'holder')).toBe(false)
    expect(await light.release(expired, 'c')).toBe(true)
  } finally {
    await light.close()
    await recorded.end()
  }
})

test('a dead place stored first does not let a newcomer past the live waiter behind it', async () => {
  const key = uniqueKey('dead-first')
  tokenOf(await store.acquire(key, 'holder', 60_000))
  await store.acquire(key, 'dead', 60_000, { lease: 100 })
  await store.acquire(key, 'live', 60_000, { lease: 60_000 })
  expect(await store.release(key, 'holder')).toBe(true)
  await sleep(200)
  // The row still stores the dead place first (release and refusals without a place rewrite no queue).
  expect(await storedQueue(key)).toEqual([
    { waiter: 'dead', live: false },
    { waiter: 'live', live: true },
  ])
  expect(await store.acquire(key, 'newcomer', 60_000)).toEqual({ acquired: false })
  expect(await store.acquire(key, 'newcomer', 60_000, { lease: 60_000 })).toMatchObject({ acquired: false, position: 1 })
  expect(await storedQueue(key)).toEqual([
    { waiter: 'live', live: true },
    { waiter: 'newcomer', live: true },
  ])
  tokenOf(await store.acquire(key, 'live', 60_000), 'the live waiter, even without a place lease')
  expect(await storedQueue(key)).toEqual([{ waiter: 'newcomer', live: true }])
  await store.release(key, 'live')
  await store.leaveQueue(key, 'newcomer')
})

test('a holder asking with a place does not acquire again: it queues like anyone else', async () => {
  const key = uniqueKey('reentrant')
  tokenOf(await store.acquire(key, 'holder', 60_000))
  expect(await store.acquire(key, 'holder', 60_000, { lease: 60_000 })).toMatchObject({ acquired: false, position: 0 })
  expect(await store.isLocked(key)).toBe(true)
  await store.leaveQueue(key, 'holder')
  expect(await store.release(key, 'holder')).toBe(true)
})

test('a holder whose lease expired while someone waits is refused like anyone else, never handed its old token', async () => {
  const key = uniqueKey('expired-holder')
  const first = tokenOf(await store.acquire(key, 'holder', 150))
  await sleep(250)
  // The waiter joins between the acquire's snapshot (which shows a free lock and no queue) and its row
  // lock: the decision must be taken on the row's latest version. A transaction holds the row while the
  // acquire starts, so its snapshot predates the commit it then waits for.
  await admin.query('BEGIN')
  await admin.query(
    `UPDATE "${tableName}" SET waiters = ARRAY[$2::bytea], waiter_leases = ARRAY[clock_timestamp() + interval '1 minute']
     WHERE key_hash = sha256($1::bytea)`,
    [toStoredBytes(key), toStoredBytes('waiter')],
  )
  const racing = store.acquire(key, 'holder', 60_000)
  await sleep(100)
  await admin.query('COMMIT')
  expect(await racing).toEqual({ acquired: false })
  // Seen in the snapshot too; and with a place, the old holder queues behind the waiter.
  expect(await store.acquire(key, 'holder', 60_000)).toEqual({ acquired: false })
  expect(await store.acquire(key, 'holder', 60_000, { lease: 60_000 })).toMatchObject({ acquired: false, position: 1 })
  expect(await store.release(key, 'holder')).toBe(false)
  expect(await store.isLocked(key)).toBe(false)
  const second = tokenOf(await store.acquire(key, 'waiter', 60_000, { lease: 60_000 }), 'the waiter')
  expect(second).toBeGreaterThan(first)
  expect(await store.release(key, 'waiter')).toBe(true)
  const third = tokenOf(await store.acquire(key, 'holder', 60_000, { lease: 60_000 }), 'the old holder, next in line')
  expect(third).toBeGreaterThan(second)
  await store.release(key, 'holder')
})

test('a newcomer racing a joiner on the row lock does not barge: the join it waited for is respected', async () => {
  const key = uniqueKey('racing-barger')
  tokenOf(await store.acquire(key, 'holder', 60_000))
  expect(await store.release(key, 'holder')).toBe(true)
  await admin.query('BEGIN')
  await admin.query(
    `UPDATE "${tableName}" SET waiters = ARRAY[$2::bytea], waiter_leases = ARRAY[clock_timestamp() + interval '1 minute']
     WHERE key_hash = sha256($1::bytea)`,
    [toStoredBytes(key), toStoredBytes('waiter')],
  )
  const barging = store.acquire(key, 'newcomer', 60_000)
  const joining = store.acquire(key, 'joiner', 60_000, { lease: 60_000 })
  await sleep(100)
  await admin.query('COMMIT')
  expect(await barging).toEqual({ acquired: false })
  expect(await joining).toMatchObject({ acquired: false, position: 1 })
  expect(await store.isLocked(key)).toBe(false)
  tokenOf(await store.acquire(key, 'waiter', 60_000, { lease: 60_000 }), 'the waiter')
  await store.release(key, 'waiter')
  await store.leaveQueue(key, 'joiner')
})

describe('housekeeping and the queue', () => {
  test('pruning never deletes a row with a live place; it does once every place ended more than pruneAfter ago', async () => {
    const pruning = new PostgresStore({ connection: pool, tableName, listen: false, pruneInterval: false, pruneAfter: 100 })
    const key = uniqueKey('prune-live')
    const before = tokenOf(await pruning.acquire(key, 'holder', 60_000))
    expect(positionOf(await pruning.acquire(key, 'waiter', 60_000, { lease: 60_000 }))).toBe(0)
    expect(await pruning.release(key, 'holder')).toBe(true)
    const shortKey = uniqueKey('prune-dead')
    tokenOf(await pruning.acquire(shortKey, 'holder', 60_000))
    await pruning.acquire(shortKey, 'waiter', 60_000, { lease: 200 })
    await pruning.release(shortKey, 'holder')
    await sleep(150)
    const rows = async (k: string) =>
      (await admin.query(`SELECT count(*)::int AS n FROM "${tableName}" WHERE key_hash = sha256($1::bytea)`, [toStoredBytes(k)]))
        .rows[0].n
    // Both leases ended over 100 ms ago; the places have not (one lives on, one died under 100 ms ago).
    await pruneAll(pruning)
    expect(await rows(key)).toBe(1)
    expect(await rows(shortKey)).toBe(1)
    await sleep(250)
    await pruneAll(pruning)
    expect(await rows(key)).toBe(1)
    expect(await rows(shortKey)).toBe(0)
    // The live waiter is still first in line, and is served with a token above the last holder's.
    expect((await pruning.acquire(key, 'newcomer', 60_000)).acquired).toBe(false)
    expect(tokenOf(await pruning.acquire(key, 'waiter', 60_000, { lease: 60_000 }))).toBeGreaterThan(before)
    await pruning.release(key, 'waiter')
  })
})

async function pruneAll(pruning: PostgresStore): Promise<void> {
  while ((await pruning.pruneExpired()) > 0) await sleep(0)
}
