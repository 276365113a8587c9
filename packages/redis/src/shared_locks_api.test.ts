import { LockFactory } from '@verrou/core'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { connect, uniqueKey } from '../test/connections.js'
import { RedisStore } from './store.js'

/**
 * Semaphores and read-write locks through the public API on Redis: eight factories, each with its own
 * connection and store (eight processes), contending on one key while each counts who holds beside it.
 */
const prefix = 'verrou-test:'
const WORKERS = 8
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

let connections: Redis[] = []
let stores: RedisStore[] = []
let factories: LockFactory[] = []

beforeAll(() => {
  connections = Array.from({ length: WORKERS }, () => connect())
  stores = connections.map((connection) => new RedisStore({ connection, prefix }))
  factories = stores.map((store) => new LockFactory(store))
})

afterAll(async () => {
  for (const store of stores) await store.close()
  await Promise.all(connections.map((connection) => connection.quit()))
})

describe('on Redis through LockFactory', () => {
  test('a semaphore: never more than limit permits held among eight contenders; every one gets its turns', async () => {
    const key = uniqueKey('api-semaphore')
    const limit = 3
    let holding = 0
    let most = 0
    const tokens: number[] = []
    await Promise.all(
      factories.map(async (factory) => {
        for (let round = 0; round < 3; round++) {
          const permit = factory.createSemaphore(key, { limit, ttl: '10s' })
          await permit.run(
            async ({ fencingToken }) => {
              tokens.push(fencingToken)
              holding++
              most = Math.max(most, holding)
              await sleep(5)
              holding--
            },
            { retry: { timeout: 20_000 } },
          )
        }
      }),
    )
    expect(most).toBeLessThanOrEqual(limit)
    expect(most).toBeGreaterThan(1)
    expect(new Set(tokens).size).toBe(WORKERS * 3)
  })

  test('a read-write lock: readers together, never a reader beside a writer, a waiting writer not starved', async () => {
    const key = uniqueKey('api-rw')
    let readers = 0
    let writers = 0
    let mostReaders = 0
    let violations = 0
    const writes: number[] = []
    await Promise.all(
      factories.map(async (factory, i) => {
        for (let round = 0; round < 3; round++) {
          const lock = factory.createReadWriteLock(key, '10s')
          if (i % 4 === 0) {
            await lock.write.run(
              async () => {
                writers++
                if (writers > 1 || readers > 0) violations++
                writes.push(i)
                await sleep(5)
                writers--
              },
              { retry: { timeout: 20_000 } },
            )
          } else {
            await lock.read.run(
              async () => {
                readers++
                mostReaders = Math.max(mostReaders, readers)
                if (writers > 0) violations++
                await sleep(5)
                readers--
              },
              { retry: { timeout: 20_000 } },
            )
          }
        }
      }),
    )
    expect(violations).toBe(0)
    expect(writes.length).toBe(6)
    expect(mostReaders).toBeGreaterThan(1)
  })

  test('isLocked, forceRelease and restoreLock keep their side', async () => {
    const key = uniqueKey('api-sides')
    const [a, b] = factories as [LockFactory, LockFactory]
    const doc = a.createReadWriteLock(key, '10s')
    expect(await doc.read.acquireImmediately()).toBe(true)
    const other = b.createReadWriteLock(key, '10s')
    expect(await other.read.isLocked()).toBe(false)
    expect(await other.write.isLocked()).toBe(true)
    expect(await other.write.acquireImmediately()).toBe(false)
    const restored = b.restoreLock(doc.read.serialize())
    expect(await restored.extend()).toBeUndefined()
    await other.read.forceRelease()
    expect(await other.write.acquireImmediately()).toBe(true)
    expect(await other.read.isLocked()).toBe(true)
    await other.write.release()
  })
})
