import type { SharedMode } from '@verrou/core'
import type pg from 'pg'
import { afterAll, describe, expect, test } from 'vitest'
import { createClient, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

/**
 * Shared locks under every `default_transaction_isolation` a server may impose, with 20 sessions at once:
 * losers of a race on the key's row get 40001 under repeatable read and serializable, which the store retries,
 * so callers only ever see true answers.
 */
const LEVELS = ['read committed', 'repeatable read', 'serializable'] as const
const SESSIONS = 20
const LIMIT = 3
const ROUNDS_PER_SESSION = 4

const tableName = uniqueTableName('verrou_shared_isolation')

afterAll(async () => {
  const admin = await createClient()
  await dropTable(admin, tableName)
  await admin.end()
})

const sessionAt = (level: string) => createClient({ options: `-c default_transaction_isolation=${level.replace(' ', '\\ ')}` })

describe.each(LEVELS)('shared locks, default_transaction_isolation = %s', (level) => {
  let sessions: pg.Client[] = []
  let stores: PostgresStore[] = []

  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()))
    await Promise.all(sessions.map((session) => session.end()))
  })

  test(`${SESSIONS} sessions racing for ${LIMIT} permits: exactly ${LIMIT} win, then each release frees one`, async () => {
    sessions = await Promise.all(Array.from({ length: SESSIONS }, () => sessionAt(level)))
    const { rows } = await sessions[0]!.query('SHOW transaction_isolation')
    expect(rows[0].transaction_isolation).toBe(level)
    stores = sessions.map((connection) => new PostgresStore({ connection, tableName, listen: false }))
    const mode: SharedMode = { exclusive: false, limit: LIMIT }
    for (let round = 0; round < 3; round++) {
      const key = uniqueKey(`permits-${round}`)
      const results = await Promise.all(stores.map((store, i) => store.shared!.acquire(key, `o${i}`, mode, 60_000)))
      const winners = results.flatMap((result, i) => (result.acquired ? [i] : []))
      expect(winners).toHaveLength(LIMIT)
      const tokens = results.flatMap((result) => (result.acquired ? [result.fencingToken] : []))
      expect(new Set(tokens).size).toBe(LIMIT)
      // Everyone tries to release: only the holders can.
      const released = await Promise.all(stores.map((store, i) => store.shared!.release(key, `o${i}`, mode)))
      expect(released.flatMap((ok, i) => (ok ? [i] : []))).toEqual(winners)
      // Once free, the racers that lost win in turn, LIMIT at a time.
      const again = await Promise.all(stores.map((store, i) => store.shared!.acquire(key, `o${i}`, mode, 60_000)))
      expect(again.filter((result) => result.acquired)).toHaveLength(LIMIT)
      await Promise.all(stores.map((store) => store.shared!.forceRelease(key, mode)))
      expect(await stores[0]!.shared!.isLocked(key, { exclusive: true, limit: null })).toBe(false)
    }
  })

  test('churn of readers, writers and permits in queue: never over the limit, never a reader beside a writer', async () => {
    const key = uniqueKey('churn')
    let readers = 0
    let writers = 0
    let maxReaders = 0
    const tokens: number[] = []
    const violations: string[] = []
    await Promise.all(
      stores.map(async (store, i) => {
        for (let round = 0; round < ROUNDS_PER_SESSION; round++) {
          const owner = `o${i}-${round}`
          const exclusive = (i + round) % 5 === 0
          const mode: SharedMode = { exclusive, limit: exclusive ? null : LIMIT }
          for (;;) {
            const result = await store.shared!.acquire(key, owner, mode, 60_000, { lease: 5_000 })
            if (result.acquired) {
              tokens.push(result.fencingToken)
              break
            }
            await sleep(10 * ((result.position ?? 0) + 1))
          }
          // Counted after the grant returned and uncounted before the release is sent: a subset of the holders.
          if (exclusive) writers++
          else readers++
          maxReaders = Math.max(maxReaders, readers)
          if (writers > 1 || (writers === 1 && readers > 0) || readers > LIMIT) {
            violations.push(`${writers} writers and ${readers} readers`)
          }
          await sleep(2)
          if (exclusive) writers--
          else readers--
          if (!(await store.shared!.release(key, owner, mode))) violations.push(`${owner} could not release`)
        }
      }),
    )
    expect(violations).toEqual([])
    expect(tokens).toHaveLength(SESSIONS * ROUNDS_PER_SESSION)
    expect(new Set(tokens).size).toBe(tokens.length)
    expect(maxReaders).toBeLessThanOrEqual(LIMIT)
    // Everyone done and gone: the key's row was deleted.
    const { rows } = await sessions[0]!.query(`SELECT count(*)::int AS n FROM "${tableName}_shared" WHERE key = $1`, [
      Buffer.from(key),
    ])
    expect(rows[0].n).toBe(0)
  })
})
