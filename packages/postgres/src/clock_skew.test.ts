import { errors, LockFactory } from '@verrou/core'
import { afterAll, afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import { createPool, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

const pool = createPool()
const tableName = uniqueTableName('verrou_skew')
const store = new PostgresStore({ connection: pool, tableName, listen: false })
const locks = new LockFactory(store)
const HOUR = 3_600_000

afterAll(async () => {
  await dropTable(pool, tableName)
  await pool.end()
})

describe.each([
  ['ahead', HOUR],
  ['behind', -HOUR],
])('client clock an hour %s of the server', (_label, offset) => {
  beforeEach(() => {
    const realNow = Date.now.bind(Date)
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset)
  })
  afterEach(() => {
    vi.restoreAllMocks()
  })

  test('acquire, extend and expiry are still decided right', async () => {
    // The skew is really in place: Date.now disagrees with the process's monotonic clock by an hour.
    expect(Math.abs(Date.now() - (performance.timeOrigin + performance.now()) - offset)).toBeLessThan(1000)

    const key = uniqueKey('skew')
    const holder = locks.createLock(key, 1000)
    const rival = locks.createLock(key, 1000)
    expect(await holder.acquireImmediately()).toBe(true)
    expect(await rival.isLocked()).toBe(true)
    expect(await rival.acquireImmediately()).toBe(false)

    await sleep(500)
    await holder.extend(1500) // now held until about t = 2000 ms
    await sleep(700) // t ≈ 1200: past the first lease, inside the extended one
    expect(await rival.isLocked()).toBe(true)
    expect(await rival.acquireImmediately()).toBe(false)

    await sleep(1100) // t ≈ 2300: the extended lease is over on the server clock
    expect(await rival.isLocked()).toBe(false)
    await expect(holder.extend()).rejects.toBeInstanceOf(errors.E_LOCK_NOT_OWNED)
    expect(await rival.acquireImmediately()).toBe(true)
    await rival.release()
  })

  test('a failed acquire reports the holder lease left on the server clock, not skewed', async () => {
    const key = uniqueKey('skew')
    expect((await store.acquire(key, 'a', 30_000)).acquired).toBe(true)
    const result = await store.acquire(key, 'b', 30_000)
    expect(result.acquired).toBe(false)
    if (result.acquired) return
    expect(result.expiresIn).toBeGreaterThan(29_000)
    expect(result.expiresIn).toBeLessThanOrEqual(30_000)
  })
})
