import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb'
import { type AcquireResult, errors, LockFactory, type SharedMode } from '@verrou/core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { loseNextReply, recordCommands, testClient, uniqueKey, uniqueTableName } from '../test/client.js'
import { refusingEndpoint } from '../test/dead_endpoint.js'
import { SHARED_KEY_PREFIX } from './attributes.js'
import { type DynamoDBStoreOptions, dynamodbStore } from './store.js'

const table = uniqueTableName('shared')
const clients: DynamoDBClient[] = []
const ALLOWANCE = 50
const HOUR = 60 * 60 * 1000
const WRITE: SharedMode = { exclusive: true, limit: null }
const READ: SharedMode = { exclusive: false, limit: null }
const permit = (limit: number): SharedMode => ({ exclusive: false, limit })

function client(): DynamoDBClient {
  const created = testClient()
  clients.push(created)
  return created
}

/** A store with its own client: stands for a separate process. */
function store(options: Partial<DynamoDBStoreOptions> = {}) {
  return dynamodbStore({ client: client(), table: { name: table }, clockSkewAllowance: ALLOWANCE, ...options })
}

/** A store whose clock is `clock.read`: the tests move time instead of sleeping. */
function clocked(clock: { read: () => number }) {
  return store({ clock: clock.read }).shared
}

function manualClock(start = Date.now()) {
  let now = start
  return {
    read: () => now,
    advance: (ms: number) => {
      now += ms
    },
  }
}

async function rawItem(key: string): Promise<Record<string, AttributeValue> | undefined> {
  const output = await client().send(
    new GetItemCommand({ TableName: table, Key: { pk: { S: SHARED_KEY_PREFIX + key } }, ConsistentRead: true }),
  )
  return output.Item
}

function tokenOf(result: AcquireResult): number {
  if (!result.acquired) throw new Error('expected a grant')
  return result.fencingToken
}

beforeAll(async () => {
  await store().shared.isLocked('warm-up', READ)
})

afterAll(() => {
  for (const created of clients) created.destroy()
})

describe('round trips', () => {
  test('an uncontended writer, and a reader on a key already used, take one UpdateItem', async () => {
    const own = client()
    const sent = recordCommands(own)
    const locks = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: ALLOWANCE }).shared
    await locks.isLocked('warm', READ)
    const key = uniqueKey()
    sent.length = 0
    expect((await locks.acquire(key, 'w', WRITE, 10_000)).acquired).toBe(true)
    expect(sent).toEqual(['UpdateItemCommand'])
    expect(await locks.release(key, 'w', WRITE)).toBe(true)
    sent.length = 0
    expect((await locks.acquire(key, 'r1', permit(2), 10_000)).acquired).toBe(true)
    expect((await locks.acquire(key, 'r2', permit(2), 10_000)).acquired).toBe(true)
    expect(sent).toEqual(['UpdateItemCommand', 'UpdateItemCommand'])
    sent.length = 0
    expect(await locks.release(key, 'r1', READ)).toBe(true)
    expect(await locks.extend(key, 'r2', READ, 20_000)).toBe(true)
    expect(sent).toEqual(['UpdateItemCommand', 'UpdateItemCommand'])
  })

  test('the first reader of a brand-new key takes two (the readers map does not exist yet)', async () => {
    const own = client()
    const sent = recordCommands(own)
    const locks = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: ALLOWANCE }).shared
    await locks.isLocked('warm', READ)
    sent.length = 0
    expect((await locks.acquire(uniqueKey(), 'r', READ, 10_000)).acquired).toBe(true)
    expect(sent).toEqual(['UpdateItemCommand', 'UpdateItemCommand'])
  })
})

describe('waiting', () => {
  test('a waiter renews its place in one request while its refusal is certain, and gets a freed key in two', async () => {
    const own = client()
    const sent = recordCommands(own)
    const waiting = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: ALLOWANCE }).shared
    const holders = store().shared
    const key = uniqueKey()
    const wait = { lease: 10_000 }
    await holders.acquire(key, 'r1', READ, 10_000)
    await holders.acquire(key, 'w0', WRITE, 10_000, wait)
    // A writer behind a reader and a writer; a reader behind both.
    expect(await waiting.acquire(key, 'w1', WRITE, 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    expect(await waiting.acquire(key, 'r2', READ, 10_000, wait)).toMatchObject({ acquired: false, position: 2 })
    sent.length = 0
    expect(await waiting.acquire(key, 'w1', WRITE, 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    expect(await waiting.acquire(key, 'r2', READ, 10_000, wait)).toMatchObject({ acquired: false, position: 2 })
    expect(sent).toEqual(['UpdateItemCommand', 'UpdateItemCommand'])
    // w0 gives up: w1 is now first, still behind the reader r1 (its witness for the next renewal).
    await holders.leaveQueue(key, 'w0')
    expect(await waiting.acquire(key, 'w1', WRITE, 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    sent.length = 0
    expect(await waiting.acquire(key, 'w1', WRITE, 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    expect(sent).toEqual(['UpdateItemCommand'])
    await holders.release(key, 'r1', READ)
    sent.length = 0
    expect((await waiting.acquire(key, 'w1', WRITE, 10_000, wait)).acquired).toBe(true)
    expect(sent).toEqual(['UpdateItemCommand', 'UpdateItemCommand'])
    // The reader now waits on a writer that holds: one request per poll.
    expect(await waiting.acquire(key, 'r2', READ, 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    sent.length = 0
    expect(await waiting.acquire(key, 'r2', READ, 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    expect(sent).toEqual(['UpdateItemCommand'])
    await waiting.release(key, 'w1', WRITE)
    expect((await waiting.acquire(key, 'r2', READ, 10_000, wait)).acquired).toBe(true)
  })

  test('a renewal never revives a place its own clock says has ended: the waiter joins again at the tail', async () => {
    const clock = manualClock()
    const waiting = clocked(clock)
    const others = store().shared
    const key = uniqueKey()
    await others.acquire(key, 'holder', WRITE, 60_000)
    expect(await waiting.acquire(key, 'late', READ, 1000, { lease: 500 })).toMatchObject({ position: 0 })
    expect(await others.acquire(key, 'next', READ, 1000, { lease: 60_000 })).toMatchObject({ position: 1 })
    clock.advance(500)
    expect(await waiting.acquire(key, 'late', READ, 1000, { lease: 500 })).toMatchObject({ acquired: false, position: 1 })
  })
})

describe('keys', () => {
  test('a mutex and a shared lock with the same key do not exclude each other', async () => {
    const locks = store()
    const key = uniqueKey()
    expect((await locks.acquire(key, 'm', 10_000)).acquired).toBe(true)
    expect((await locks.shared.acquire(key, 'w', WRITE, 10_000)).acquired).toBe(true)
    expect(await locks.isLocked(key)).toBe(true)
    expect(await locks.release(key, 'm')).toBe(true)
    expect(await locks.shared.isLocked(key, WRITE)).toBe(true)
  })

  test('mutex keys cannot take the reserved prefix of shared items', async () => {
    const locks = store()
    await expect(locks.acquire(`${SHARED_KEY_PREFIX}x`, 'o', 1000)).rejects.toBeInstanceOf(errors.E_INVALID_ARGUMENT)
  })

  test('a shared key too long for a partition key once prefixed is refused before any request', async () => {
    await expect(store().shared.acquire('k'.repeat(2040), 'o', READ, 1000)).rejects.toBeInstanceOf(errors.E_INVALID_ARGUMENT)
  })
})

describe('grant rule', () => {
  test('readers share, a writer excludes readers and writers, nobody re-enters', async () => {
    const locks = store().shared
    const key = uniqueKey()
    expect((await locks.acquire(key, 'r1', READ, 10_000)).acquired).toBe(true)
    expect((await locks.acquire(key, 'r2', READ, 10_000)).acquired).toBe(true)
    expect((await locks.acquire(key, 'r1', READ, 10_000)).acquired).toBe(false)
    expect((await locks.acquire(key, 'r1', WRITE, 10_000)).acquired).toBe(false)
    expect((await locks.acquire(key, 'w', WRITE, 10_000)).acquired).toBe(false)
    expect(await locks.isLocked(key, READ)).toBe(false)
    expect(await locks.isLocked(key, WRITE)).toBe(true)
    await locks.release(key, 'r1', READ)
    await locks.release(key, 'r2', READ)
    expect((await locks.acquire(key, 'w', WRITE, 10_000)).acquired).toBe(true)
    expect((await locks.acquire(key, 'r3', READ, 10_000)).acquired).toBe(false)
    expect((await locks.acquire(key, 'w', WRITE, 10_000)).acquired).toBe(false)
    expect(await locks.isLocked(key, READ)).toBe(true)
  })

  test('release and extend need the same exclusivity', async () => {
    const locks = store().shared
    const key = uniqueKey()
    await locks.acquire(key, 'r', READ, 10_000)
    expect(await locks.release(key, 'r', WRITE)).toBe(false)
    expect(await locks.extend(key, 'r', WRITE, 10_000)).toBe(false)
    expect(await locks.release(key, 'r', permit(3))).toBe(true)
  })

  test('a permit is refused at the limit; each request brings its own limit', async () => {
    const locks = store().shared
    const key = uniqueKey()
    expect((await locks.acquire(key, 'a', permit(2), 10_000)).acquired).toBe(true)
    expect((await locks.acquire(key, 'b', permit(2), 10_000)).acquired).toBe(true)
    expect((await locks.acquire(key, 'c', permit(2), 10_000)).acquired).toBe(false)
    expect(await locks.isLocked(key, permit(2))).toBe(true)
    expect(await locks.isLocked(key, permit(3))).toBe(false)
    // A client asking with a higher limit is admitted: the store keeps no limit of its own.
    expect((await locks.acquire(key, 'c', permit(3), 10_000)).acquired).toBe(true)
    expect((await locks.acquire(key, 'd', permit(2), 10_000)).acquired).toBe(false)
  })

  test('an expired holder does not count, for others; its owner can neither release nor extend it', async () => {
    const clock = manualClock()
    const locks = clocked(clock)
    const key = uniqueKey()
    expect((await locks.acquire(key, 'p1', permit(1), 1000)).acquired).toBe(true)
    expect((await locks.acquire(key, 'p2', permit(1), 1000)).acquired).toBe(false)
    clock.advance(1000)
    // Over on the holder's clock, not yet for others (the allowance).
    expect(await locks.extend(key, 'p1', permit(1), 1000)).toBe(false)
    clock.advance(ALLOWANCE - 1)
    expect((await locks.acquire(key, 'p2', permit(1), 1000)).acquired).toBe(false)
    expect(await locks.isLocked(key, permit(1))).toBe(true)
    clock.advance(1)
    expect(await locks.isLocked(key, permit(1))).toBe(false)
    expect(await locks.isLocked(key, WRITE)).toBe(false)
    expect((await locks.acquire(key, 'p2', permit(1), 1000)).acquired).toBe(true)
    expect(await locks.release(key, 'p1', permit(1))).toBe(false)
    // The expired entry was dropped by the grant.
    expect(Object.keys((await rawItem(key))?.readers?.M ?? {})).toEqual(['p2'])
  })

  test('an expired writer does not count', async () => {
    const clock = manualClock()
    const locks = clocked(clock)
    const key = uniqueKey()
    await locks.acquire(key, 'w', WRITE, 1000)
    expect((await locks.acquire(key, 'r', READ, 1000)).acquired).toBe(false)
    clock.advance(1000 + ALLOWANCE + 1)
    expect((await locks.acquire(key, 'r', READ, 1000)).acquired).toBe(true)
    expect(await locks.release(key, 'w', WRITE)).toBe(false)
  })

  test('a client whose clock runs 300 ms ahead, within an allowance of 500 ms, leaves a live reader alone', async () => {
    const start = Date.now()
    let holderNow = start
    const holder = store({ clock: () => holderNow, clockSkewAllowance: 500 }).shared
    const ahead = store({ clock: () => holderNow + 300, clockSkewAllowance: 500 }).shared
    const key = uniqueKey()
    await holder.acquire(key, 'reader', READ, 1000)
    holderNow = start + 999
    // The reader's lease still runs on its own clock: the writer ahead in time must not get in.
    expect((await ahead.acquire(key, 'writer', WRITE, 1000)).acquired).toBe(false)
    expect(await ahead.isLocked(key, WRITE)).toBe(true)
    expect(await holder.extend(key, 'reader', READ, 1000)).toBe(true)
  })

  test('a stale owner cannot release or extend after the key was granted again', async () => {
    const clock = manualClock()
    const early = clocked(clock)
    const key = uniqueKey()
    await early.acquire(key, 'old-writer', WRITE, 1000)
    clock.advance(2000)
    const later = clocked(clock)
    expect((await later.acquire(key, 'new-writer', WRITE, 10_000)).acquired).toBe(true)
    expect(await early.release(key, 'old-writer', WRITE)).toBe(false)
    expect(await early.extend(key, 'old-writer', WRITE, 10_000)).toBe(false)
    expect(await later.isLocked(key, WRITE)).toBe(true)
    expect(await later.release(key, 'new-writer', WRITE)).toBe(true)
    // The same with readers: a re-granted reader slot is not the stale reader's.
    await early.acquire(key, 'old-reader', permit(1), 1000)
    clock.advance(2000)
    expect((await later.acquire(key, 'new-reader', permit(1), 10_000)).acquired).toBe(true)
    expect(await early.release(key, 'old-reader', permit(1))).toBe(false)
    expect(await later.isLocked(key, permit(1))).toBe(true)
  })

  test('a writer that waits blocks readers that come after it', async () => {
    const locks = store().shared
    const key = uniqueKey()
    const wait = { lease: 10_000 }
    expect((await locks.acquire(key, 'r1', READ, 10_000)).acquired).toBe(true)
    expect(await locks.acquire(key, 'w', WRITE, 10_000, wait)).toEqual({
      acquired: false,
      expiresIn: expect.any(Number),
      position: 0,
    })
    // Only a reader holds, yet a new reader waits behind the writer, with or without a place.
    expect((await locks.acquire(key, 'r2', READ, 10_000)).acquired).toBe(false)
    expect(await locks.acquire(key, 'r2', READ, 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    expect(await locks.acquire(key, 'r3', permit(5), 10_000, wait)).toMatchObject({ acquired: false, position: 2 })
    await locks.release(key, 'r1', READ)
    expect((await locks.acquire(key, 'r2', READ, 10_000, wait)).acquired).toBe(false)
    expect((await locks.acquire(key, 'w', WRITE, 10_000, wait)).acquired).toBe(true)
    expect(await locks.acquire(key, 'r2', READ, 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    await locks.release(key, 'w', WRITE)
    // Both readers behind it get in together: r3's permit fits beside r2's place.
    expect((await locks.acquire(key, 'r3', permit(1), 10_000, wait)).acquired).toBe(false)
    expect((await locks.acquire(key, 'r2', READ, 10_000, wait)).acquired).toBe(true)
    expect((await locks.acquire(key, 'r3', permit(5), 10_000, wait)).acquired).toBe(true)
    expect((await rawItem(key))?.queue?.M).toEqual({})
  })

  test('permits queued ahead count against the limit', async () => {
    const locks = store().shared
    const key = uniqueKey()
    const wait = { lease: 10_000 }
    await locks.acquire(key, 'a', permit(2), 10_000)
    await locks.acquire(key, 'b', permit(2), 10_000)
    expect(await locks.acquire(key, 'c', permit(2), 10_000, wait)).toMatchObject({ acquired: false, position: 0 })
    expect(await locks.acquire(key, 'd', permit(2), 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    await locks.release(key, 'a', permit(2))
    // d would fit by the holders alone, but c is ahead of it.
    expect(await locks.acquire(key, 'd', permit(2), 10_000, wait)).toMatchObject({ acquired: false, position: 1 })
    expect((await locks.acquire(key, 'c', permit(2), 10_000, wait)).acquired).toBe(true)
    expect((await locks.acquire(key, 'd', permit(2), 10_000, wait)).acquired).toBe(false)
    await locks.leaveQueue(key, 'd')
    await locks.leaveQueue(key, 'd')
    expect((await rawItem(key))?.queue?.M).toEqual({})
  })

  test('a dead place is skipped once its lease has been over for the allowance', async () => {
    const clock = manualClock()
    const locks = clocked(clock)
    const key = uniqueKey()
    await locks.acquire(key, 'r1', READ, 60_000)
    expect(await locks.acquire(key, 'dead-writer', WRITE, 1000, { lease: 500 })).toMatchObject({ position: 0 })
    expect((await locks.acquire(key, 'r2', READ, 60_000)).acquired).toBe(false)
    clock.advance(500 + ALLOWANCE - 1)
    expect((await locks.acquire(key, 'r2', READ, 60_000)).acquired).toBe(false)
    clock.advance(1)
    expect((await locks.acquire(key, 'r2', READ, 60_000)).acquired).toBe(true)
    // Dropped by that grant.
    expect((await rawItem(key))?.queue?.M).toEqual({})
    // The waiter that came back late joins again at the tail, behind nobody: r1 and r2 still read.
    expect(await locks.acquire(key, 'dead-writer', WRITE, 1000, { lease: 500 })).toMatchObject({ position: 0 })
  })

  test('20 concurrent acquirers of a 3-permit semaphore: exactly 3 get in, the others queue in distinct places', async () => {
    const key = uniqueKey()
    const stores = Array.from({ length: 20 }, () => store().shared)
    const results = await Promise.all(
      stores.map((locks, index) => locks.acquire(key, `o${index}`, permit(3), 30_000, { lease: 30_000 })),
    )
    const granted = results.filter((result) => result.acquired)
    expect(granted).toHaveLength(3)
    expect(new Set(granted.map(tokenOf)).size).toBe(3)
    const positions = results.flatMap((result) => (result.acquired ? [] : [result.position]))
    expect(positions.sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(Array.from({ length: 17 }, (_, index) => index))
    const readers = (await rawItem(key))?.readers?.M ?? {}
    expect(Object.keys(readers)).toHaveLength(3)
  })

  test('20 concurrent acquirers churning a 2-permit semaphore never exceed it', async () => {
    const key = uniqueKey()
    let holding = 0
    let most = 0
    const tokens: number[] = []
    await Promise.all(
      Array.from({ length: 20 }, async (_, index) => {
        const locks = store().shared
        const owner = `o${index}`
        for (let attempt = 0; attempt < 200; attempt++) {
          const result = await locks.acquire(key, owner, permit(2), 30_000, { lease: 5000 })
          if (result.acquired) {
            holding++
            most = Math.max(most, holding)
            tokens.push(result.fencingToken)
            await new Promise((resolve) => setTimeout(resolve, 5))
            holding--
            expect(await locks.release(key, owner, permit(2))).toBe(true)
            return
          }
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
        throw new Error(`${owner} never got a permit`)
      }),
    )
    expect(most).toBeLessThanOrEqual(2)
    expect(new Set(tokens).size).toBe(20)
  }, 20_000)
})

describe('fencing tokens', () => {
  test('rise across permits, reads, writes, release, force release and a deleted item', async () => {
    const locks = store().shared
    const key = uniqueKey()
    const tokens: number[] = []
    tokens.push(tokenOf(await locks.acquire(key, 'r1', READ, 10_000)))
    tokens.push(tokenOf(await locks.acquire(key, 'p', permit(3), 10_000)))
    await locks.forceRelease(key, READ)
    tokens.push(tokenOf(await locks.acquire(key, 'w', WRITE, 10_000)))
    await locks.forceRelease(key, WRITE)
    tokens.push(tokenOf(await locks.acquire(key, 'r2', READ, 10_000)))
    await locks.release(key, 'r2', READ)
    await client().send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: SHARED_KEY_PREFIX + key } } }))
    tokens.push(tokenOf(await locks.acquire(key, 'w2', WRITE, 10_000)))
    for (let index = 1; index < tokens.length; index++) expect(tokens[index]).toBeGreaterThan(tokens[index - 1] as number)
  })
})

describe('force release and isLocked', () => {
  test('force release in shared mode ends every reader, in exclusive mode the writer', async () => {
    const locks = store().shared
    const key = uniqueKey()
    await locks.acquire(key, 'r1', READ, 10_000)
    await locks.acquire(key, 'r2', READ, null)
    await locks.forceRelease(key, WRITE)
    expect(await locks.isLocked(key, WRITE)).toBe(true)
    await locks.forceRelease(key, READ)
    expect(await locks.isLocked(key, WRITE)).toBe(false)
    expect(await locks.release(key, 'r2', READ)).toBe(false)
    await locks.acquire(key, 'w', WRITE, null)
    await locks.forceRelease(key, READ)
    expect(await locks.isLocked(key, READ)).toBe(true)
    await locks.forceRelease(key, WRITE)
    expect(await locks.isLocked(key, READ)).toBe(false)
    // Nothing is created for a key nobody used.
    const unused = uniqueKey()
    await locks.forceRelease(unused, WRITE)
    expect(await rawItem(unused)).toBeUndefined()
  })
})

describe('storage', () => {
  const ttlOf = async (key: string) => Number((await rawItem(key))?.ttl?.N)
  const seconds = (ms: number) => Math.ceil(ms / 1000)

  test('the TTL covers the longest live lease, whatever order they come in', async () => {
    const locks = store().shared
    const key = uniqueKey()
    const start = Date.now()
    await locks.acquire(key, 'long', READ, 2 * HOUR)
    await locks.acquire(key, 'short', READ, 10_000)
    expect(await ttlOf(key)).toBeGreaterThanOrEqual(seconds(start + 3 * HOUR))
    await locks.extend(key, 'short', READ, 20_000)
    expect(await ttlOf(key)).toBeGreaterThanOrEqual(seconds(start + 3 * HOUR))
    await locks.release(key, 'short', READ)
    expect(await ttlOf(key)).toBeGreaterThanOrEqual(seconds(start + 3 * HOUR))
  })

  test('a lease that never ends keeps the item; once released, the TTL comes back to an hour', async () => {
    const locks = store().shared
    const key = uniqueKey()
    await locks.acquire(key, 'forever', READ, null)
    expect(await ttlOf(key)).toBeGreaterThan(seconds(Date.now() + 1000 * 365 * 24 * HOUR))
    await locks.release(key, 'forever', READ)
    const after = await ttlOf(key)
    expect(after).toBeLessThanOrEqual(seconds(Date.now() + HOUR + ALLOWANCE) + 1)
    expect(after).toBeGreaterThanOrEqual(seconds(Date.now() + HOUR) - 1)
  })

  test('a writer without expiry, force-released, leaves an item that TTL deletes within the hour', async () => {
    const locks = store().shared
    const key = uniqueKey()
    await locks.acquire(key, 'forever', WRITE, null)
    await locks.acquire(key, 'reader', READ, 1000, { lease: 1000 })
    expect(await ttlOf(key)).toBeGreaterThan(seconds(Date.now() + 1000 * 365 * 24 * HOUR))
    await locks.forceRelease(key, WRITE)
    expect(await ttlOf(key)).toBeLessThanOrEqual(seconds(Date.now() + HOUR + ALLOWANCE) + 1)
    // The waiter's place is still covered.
    expect((await locks.acquire(key, 'reader', READ, 1000, { lease: 1000 })).acquired).toBe(true)
  })

  test('a lease without end, extended to a finite one, lets the TTL come back', async () => {
    const locks = store().shared
    const key = uniqueKey()
    await locks.acquire(key, 'r', READ, null)
    expect(await locks.extend(key, 'r', READ, 10_000)).toBe(true)
    expect(await ttlOf(key)).toBeLessThanOrEqual(seconds(Date.now() + 10_000 + HOUR + ALLOWANCE) + 1)
    expect(await locks.isLocked(key, WRITE)).toBe(true)
  })

  test('a place holds the TTL up while it waits', async () => {
    const locks = store().shared
    const key = uniqueKey()
    const start = Date.now()
    await locks.acquire(key, 'w', WRITE, 1000)
    await locks.acquire(key, 'r', READ, 1000, { lease: 20 * 60_000 })
    expect(await ttlOf(key)).toBeGreaterThanOrEqual(seconds(start + 20 * 60_000 + HOUR))
  })
})

describe('failures', () => {
  test('a backend failure is thrown, never a refusal', async () => {
    const dead = dynamodbStore({
      client: testClient(await refusingEndpoint()),
      table: { name: table },
      clockSkewAllowance: ALLOWANCE,
    }).shared
    await expect(dead.acquire(uniqueKey(), 'o', READ, 1000)).rejects.toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    await expect(dead.release(uniqueKey(), 'o', READ)).rejects.toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
  })

  test('a failure of the guarded write after a failed condition is thrown, not a refusal', async () => {
    const own = client()
    let sent = 0
    own.middlewareStack.add(
      (next) => async (args) => {
        sent++
        if (sent === 2) throw Object.assign(new Error('simulated outage'), { name: 'InternalServerError' })
        return next(args)
      },
      { step: 'initialize', name: 'verrouFailSecond' },
    )
    const locks = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: ALLOWANCE, autoCreateTable: false })
    const key = uniqueKey()
    await store().shared.acquire(key, 'holder', WRITE, 10_000)
    // The first request fails its condition (held); the join that follows meets the outage.
    await expect(locks.shared.acquire(key, 'waiter', READ, 1000, { lease: 1000 })).rejects.toBeInstanceOf(
      errors.E_LOCK_STORAGE_ERROR,
    )
    expect(sent).toBe(2)
  })

  test('a malformed item is a storage error', async () => {
    const locks = store().shared
    const key = uniqueKey()
    await locks.acquire(key, 'w', WRITE, 10_000)
    await client().send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk: { S: SHARED_KEY_PREFIX + key } },
        UpdateExpression: 'SET readers = :bad',
        ExpressionAttributeValues: { ':bad': { S: 'oops' } },
      }),
    )
    await expect(locks.acquire(key, 'r', READ, 1000)).rejects.toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
  })

  test('a grant whose reply was lost is recognised when the SDK retries it', async () => {
    const own = client()
    const locks = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: ALLOWANCE }).shared
    const key = uniqueKey()
    await locks.acquire(key, 'w', WRITE, 1000)
    await locks.release(key, 'w', WRITE)
    loseNextReply(own)
    const result = await locks.acquire(key, 'r', permit(1), 10_000)
    expect(result.acquired).toBe(true)
    const other = client()
    loseNextReply(other)
    const releasing = dynamodbStore({ client: other, table: { name: table }, clockSkewAllowance: ALLOWANCE }).shared
    expect(await releasing.release(key, 'r', permit(1))).toBe(true)
    expect(await locks.isLocked(key, WRITE)).toBe(false)
  })
})

describe('through the Lock API', () => {
  test('a semaphore of 2 across 4 processes runs at most 2 jobs at once, each job once', async () => {
    const key = uniqueKey('jobs')
    const factories = Array.from({ length: 4 }, () => new LockFactory(store()))
    let running = 0
    let most = 0
    const done: number[] = []
    await Promise.all(
      Array.from({ length: 8 }, async (_, job) => {
        const permit = (factories[job % 4] as LockFactory).createSemaphore(key, { limit: 2, ttl: '10s' })
        await permit.run(
          async ({ fencingToken }) => {
            expect(fencingToken).toBeGreaterThan(0)
            running++
            most = Math.max(most, running)
            await new Promise((resolve) => setTimeout(resolve, 20))
            running--
            done.push(job)
          },
          { retry: { timeout: 15_000 } },
        )
      }),
    )
    expect(most).toBeLessThanOrEqual(2)
    expect(done.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
  })

  test('readers share, a writer waits for them and then excludes them; a restored write side releases', async () => {
    const key = uniqueKey('doc')
    const one = new LockFactory(store())
    const two = new LockFactory(store())
    const a = one.createReadWriteLock(key, '10s')
    const b = two.createReadWriteLock(key, '10s')
    expect(await a.read.acquireImmediately()).toBe(true)
    expect(await b.read.acquireImmediately()).toBe(true)
    expect(await b.write.acquireImmediately()).toBe(false)
    expect(await a.write.isLocked()).toBe(true)
    expect(await a.read.isLocked()).toBe(false)
    await a.read.release()
    await b.read.release()
    const writer = one.createReadWriteLock(key, '10s').write
    expect(await writer.acquireImmediately()).toBe(true)
    expect(await b.read.acquireImmediately()).toBe(false)
    const restored = two.restoreLock(writer.serialize())
    await restored.release()
    expect(await b.read.acquireImmediately()).toBe(true)
    await b.read.release()
  })
})
