import { GetItemCommand } from '@aws-sdk/client-dynamodb'
import { afterAll, describe, expect, test } from 'vitest'
import { testClient, uniqueKey, uniqueTableName } from '../test/client.js'
import { dynamodbStore, LATEST_LEASE_END } from './store.js'

const client = testClient()
const table = uniqueTableName('huge-ttl')
const store = dynamodbStore({ client, table: { name: table }, clockSkewAllowance: 50 })

afterAll(() => client.destroy())

/** Every ttl the contract accepts, up to Number.MAX_SAFE_INTEGER ms (about 285,000 years). */
const HUGE_TTLS = [2 ** 31, 2 ** 40, 10 ** 15, 2 ** 52, Number.MAX_SAFE_INTEGER]

async function storedNumbers(key: string): Promise<{ expiresAt: string; ttl: string }> {
  const { Item } = await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: key } }, ConsistentRead: true }))
  return { expiresAt: Item?.expiresAt?.N ?? '', ttl: Item?.ttl?.N ?? '' }
}

describe.each(HUGE_TTLS)('a lease of %d ms', (ttl) => {
  test('is held, refuses rivals with a sane expiresIn, extends, releases and is taken again', async () => {
    const key = uniqueKey('huge')
    const first = await store.acquire(key, 'holder', ttl)
    expect(first.acquired).toBe(true)
    // The lease end is stored as an exact integer (clamped to the latest one a safe integer can hold).
    const stored = await storedNumbers(key)
    expect(stored.expiresAt).toMatch(/^\d+$/)
    expect(Number.isSafeInteger(Number(stored.expiresAt))).toBe(true)
    expect(Number(stored.expiresAt)).toBeGreaterThan(Math.min(Date.now() + ttl, LATEST_LEASE_END) - 60_000)
    expect(stored.ttl).toMatch(/^\d+$/)
    for (const rivalTtl of [1_000, ttl]) {
      const refused = await store.acquire(key, 'rival', rivalTtl)
      const expiresIn = refused.acquired ? 0 : refused.expiresIn
      expect(Number.isSafeInteger(expiresIn)).toBe(true)
      expect(expiresIn).toBeLessThanOrEqual(ttl + 50)
      expect(expiresIn).toBeGreaterThan(Math.min(ttl, LATEST_LEASE_END - Date.now()) - 60_000)
    }
    expect(await store.isLocked(key)).toBe(true)
    expect(await store.extend(key, 'rival', ttl)).toBe(false)
    expect(await store.extend(key, 'holder', ttl)).toBe(true)
    expect(await store.release(key, 'rival')).toBe(false)
    expect(await store.release(key, 'holder')).toBe(true)
    const second = await store.acquire(key, 'rival', ttl)
    expect(second.acquired && first.acquired && second.fencingToken > first.fencingToken).toBe(true)
    await store.forceRelease(key)
    expect(await store.isLocked(key)).toBe(false)
  })
})
