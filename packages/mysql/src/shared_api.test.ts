import { randomUUID } from 'node:crypto'
import { LockFactory } from '@verrou/core'
import type { Connection } from 'mysql2/promise'
import { afterAll, describe, expect, test } from 'vitest'
import { createTestConnection, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { type MysqlStore, mysqlStore } from './index.js'

const pool = createTestPool({ connectionLimit: 2 })
const tableName = uniqueTableName('shared_api')
const connections: Connection[] = []
const stores: MysqlStore[] = []
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A factory on a connection of its own: one "process". */
async function processFactory(): Promise<LockFactory> {
  const connection = await createTestConnection()
  connections.push(connection)
  const store = mysqlStore({ connection, tableName, pruneInterval: false })
  stores.push(store)
  return new LockFactory(store)
}

afterAll(async () => {
  await Promise.all(stores.map((each) => each.close()))
  await dropTables(pool, tableName)
  await Promise.all(connections.map((each) => each.end()))
  await pool.end()
})

describe('semaphores and read-write locks on MySQL, through the Lock API', () => {
  test('a rate-limited job runner: 12 jobs from 4 processes, never more than 3 at once', async () => {
    const key = `exports:${randomUUID()}`
    const factories = await Promise.all(Array.from({ length: 4 }, processFactory))
    let running = 0
    let most = 0
    const tokens: number[] = []
    const job = async (factory: LockFactory) => {
      const permit = factory.createSemaphore(key, { limit: 3, ttl: '10s' })
      await permit.run(
        async ({ fencingToken }) => {
          tokens.push(fencingToken)
          running++
          most = Math.max(most, running)
          await sleep(30)
          running--
        },
        { retry: { timeout: 15_000 } },
      )
    }
    await Promise.all(Array.from({ length: 12 }, (_, i) => job(factories[i % factories.length]!)))
    expect(most).toBeLessThanOrEqual(3)
    expect(most).toBeGreaterThan(1)
    expect(new Set(tokens).size).toBe(12)
  })

  test('readers share, a writer is alone, and a restored read lock releases its own holding', async () => {
    const key = `doc:${randomUUID()}`
    const [first, second] = await Promise.all([processFactory(), processFactory()])
    const reader1 = first.createReadWriteLock(key, '10s')
    const reader2 = second.createReadWriteLock(key, '10s')
    expect(await reader1.read.acquireImmediately()).toBe(true)
    expect(await reader2.read.acquireImmediately()).toBe(true)
    expect(await reader2.write.isLocked()).toBe(true)
    expect(await reader2.read.isLocked()).toBe(false)
    const writer = second.createReadWriteLock(key, '10s')
    expect(await writer.write.acquireImmediately()).toBe(false)
    const restored = second.restoreLock(reader1.read.serialize())
    await restored.release()
    await reader2.read.release()
    expect(await writer.write.acquire({ retry: { timeout: 5_000 } })).toBe(true)
    expect(await reader1.read.acquireImmediately()).toBe(false)
    expect(await reader1.read.isLocked()).toBe(true)
    await writer.write.release()
  })
})
