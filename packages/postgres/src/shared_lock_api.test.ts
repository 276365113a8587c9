import { LockFactory } from '@verrou/core'
import { afterAll, describe, expect, test } from 'vitest'
import { createPool, dropTable, sleep, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { PostgresStore } from './store.js'

/** The public API (`createSemaphore`, `createReadWriteLock`) on PostgreSQL, from two "processes" (pools). */
const tableName = uniqueTableName('verrou_shared_api')
const pools = [createPool(), createPool()]
const stores = pools.map((connection) => new PostgresStore({ connection, tableName, pruneInterval: false }))
const factories = stores.map((store) => new LockFactory(store))

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()))
  await dropTable(pools[0]!, tableName)
  await Promise.all(pools.map((pool) => pool.end()))
})

describe('semaphores and read-write locks on PostgreSQL through the Lock API', () => {
  test('8 jobs on a semaphore of 3 across two stores: never more than 3 at once, tokens distinct', async () => {
    const key = uniqueKey('jobs')
    let running = 0
    let most = 0
    const tokens: number[] = []
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        factories[i % 2]!.createSemaphore(key, { limit: 3, ttl: '10s' }).run(
          async ({ fencingToken }) => {
            tokens.push(fencingToken)
            running++
            most = Math.max(most, running)
            await sleep(40)
            running--
          },
          { retry: { timeout: 10_000 } },
        ),
      ),
    )
    expect(most).toBeLessThanOrEqual(3)
    expect(most).toBeGreaterThan(1)
    expect(new Set(tokens).size).toBe(8)
  })

  test('a waiting writer is woken by the last reader leaving, in milliseconds, despite a 5 s retry delay', async () => {
    const key = uniqueKey('doc')
    const readers = [factories[0]!.createReadWriteLock(key, '10s'), factories[0]!.createReadWriteLock(key, '10s')]
    for (const reader of readers) expect(await reader.read.acquireImmediately()).toBe(true)
    const writer = factories[1]!.createReadWriteLock(key, '10s')
    const written = writer.write.acquire({ retry: { delay: 5_000, timeout: 20_000 } })
    await sleep(300)
    // Once a writer waits, a new reader does not get in.
    const late = factories[0]!.createReadWriteLock(key, '10s')
    expect(await late.read.acquireImmediately()).toBe(false)
    expect(await writer.write.isLocked()).toBe(true)
    await readers[0]!.read.release()
    await readers[1]!.read.release()
    const released = Date.now()
    await written
    expect(Date.now() - released).toBeLessThan(2_000)
    expect(await late.read.isLocked()).toBe(true)
    await writer.write.release()
    expect(await late.read.acquireImmediately()).toBe(true)
    await late.read.release()
  })

  test('a restored permit can be released by the other process; a stale one cannot', async () => {
    const key = uniqueKey('restore')
    const permit = factories[0]!.createSemaphore(key, { limit: 1, ttl: 200 })
    expect(await permit.acquireImmediately()).toBe(true)
    const restored = factories[1]!.restoreLock(permit.serialize())
    expect(await restored.isLocked()).toBe(true)
    await sleep(300)
    const next = factories[1]!.createSemaphore(key, { limit: 1, ttl: '10s' })
    expect(await next.acquireImmediately()).toBe(true)
    await expect(restored.release()).rejects.toThrow()
    await next.release()
  })
})
