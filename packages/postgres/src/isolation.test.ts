import type pg from 'pg'
import { afterAll, describe, expect, test } from 'vitest'
import { createClient, createPool, dropTable, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

/**
 * Users run PostgreSQL with `default_transaction_isolation` raised (server, database or role setting). Each
 * lock statement is then its own repeatable-read or serializable transaction, and a race on one key ends
 * in "could not serialize access" for the losers. The tests set the level per session, the way such a
 * server would hand it to every connection, and race 20 sessions on one key.
 */
const LEVELS = ['read committed', 'repeatable read', 'serializable'] as const
const RACERS = 20
/** Handovers the churn test waits for. */
const GRANTS = 50

const tableName = uniqueTableName('verrou_isolation')

afterAll(async () => {
  const admin = await createClient()
  await dropTable(admin, tableName)
  await admin.end()
})

function sessionAt(level: string): Promise<pg.Client> {
  return createClient({ options: `-c default_transaction_isolation=${level.replace(' ', '\\ ')}` })
}

describe.each(LEVELS)('default_transaction_isolation = %s', (level) => {
  test('the level really is in force on the store sessions', async () => {
    const session = await sessionAt(level)
    try {
      const { rows } = await session.query('SHOW transaction_isolation')
      expect(rows[0].transaction_isolation).toBe(level)
    } finally {
      await session.end()
    }
  })

  test(`${RACERS} sessions racing on one key: one winner each time, the rest "not acquired", never an error`, async () => {
    const sessions = await Promise.all(Array.from({ length: RACERS }, () => sessionAt(level)))
    const stores = sessions.map((connection) => new PostgresStore({ connection, tableName, listen: false }))
    try {
      for (let round = 0; round < 10; round++) {
        // A key nobody has (racing inserts), then the same key once released (racing takeovers).
        const key = uniqueKey(`race-${round}`)
        for (const phase of ['new', 'released', 'force released'] as const) {
          const results = await Promise.all(stores.map((store, i) => store.acquire(key, `owner-${i}`, 60_000)))
          const winners = results.flatMap((result, i) => (result.acquired ? [i] : []))
          expect(winners, `${phase} key, round ${round}`).toHaveLength(1)
          for (const result of results) {
            // A loser that saw the winner's row reports its lease; one that raced the insert may not know it.
            if (!result.acquired && result.expiresIn !== undefined) expect(result.expiresIn).toBeGreaterThan(50_000)
          }
          const winner = winners[0]!
          // The holder's extend and release while everyone else keeps trying to take the key.
          const [extended, ...others] = await Promise.all([
            stores[winner]!.extend(key, `owner-${winner}`, 60_000),
            ...stores.map((store, i) => (i === winner ? store.isLocked(key) : store.extend(key, `owner-${i}`, 60_000))),
          ])
          expect(extended).toBe(true)
          expect(others.filter((answer) => answer === true)).toEqual([true]) // only the holder's isLocked
          if (phase === 'force released') {
            await Promise.all(stores.map((store) => store.forceRelease(key)))
            expect(await stores[0]!.isLocked(key)).toBe(false)
          } else {
            const released = await Promise.all(stores.map((store, i) => store.release(key, `owner-${i}`)))
            expect(released.filter(Boolean)).toHaveLength(1)
            expect(released[winner]).toBe(true)
          }
        }
      }
    } finally {
      await Promise.all(sessions.map((session) => session.end()))
    }
  })

  test('churn: acquire, extend and release by many sessions at once keep exclusion and never fail', async () => {
    const pool = createPool({ max: RACERS, options: `-c default_transaction_isolation=${level.replace(' ', '\\ ')}` })
    const store = new PostgresStore({ connection: pool, tableName, listen: false, pruneAfter: 0, pruneInterval: 0 })
    const key = uniqueKey('churn')
    let holders = 0
    let overlaps = 0
    let grants = 0
    const lastToken = { value: 0 }
    const worker = async (id: number) => {
      const owner = `churner-${id}`
      // Until the key has changed hands often enough (bounded, in case it never does).
      for (let attempt = 0; attempt < 2000 && grants < GRANTS; attempt++) {
        const result = await store.acquire(key, owner, 10_000)
        if (!result.acquired) continue
        holders++
        if (holders > 1) overlaps++
        grants++
        expect(result.fencingToken).toBeGreaterThan(lastToken.value)
        lastToken.value = result.fencingToken
        expect(await store.extend(key, owner, 10_000)).toBe(true)
        holders--
        expect(await store.release(key, owner)).toBe(true)
      }
    }
    try {
      await Promise.all(Array.from({ length: RACERS }, (_, id) => worker(id)))
    } finally {
      await pool.end()
    }
    expect(overlaps).toBe(0)
    expect(grants).toBeGreaterThanOrEqual(GRANTS)
  })
})
