import { type AttributeValue, type DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import { type AcquireResult, errors, LockFactory, type LockStore } from '@verrou/core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { loseNextReply, recordCommands, testClient, uniqueKey, uniqueTableName } from '../test/client.js'
import { type DynamoDBStoreOptions, dynamodbStore, MAX_PLACE_LEASE_MS } from './store.js'

const table = uniqueTableName('queue')
const clients: DynamoDBClient[] = []
const HOUR = 60 * 60 * 1000
const TTL = 10_000

function client(): DynamoDBClient {
  const created = testClient()
  clients.push(created)
  return created
}

/** A store with its own client: stands for a separate process. */
function store(options: Partial<DynamoDBStoreOptions> = {}) {
  return dynamodbStore({ client: client(), table: { name: table }, clockSkewAllowance: 50, ...options })
}

/** A store whose requests are counted by command name. */
function countedStore(options: Partial<DynamoDBStoreOptions> = {}) {
  const own = client()
  const sent = recordCommands(own)
  return { sent, locks: dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: 50, ...options }) }
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
  const output = await client().send(new GetItemCommand({ TableName: table, Key: { pk: { S: key } }, ConsistentRead: true }))
  return output.Item
}

function position(result: AcquireResult): number | 'granted' | undefined {
  return result.acquired ? 'granted' : result.position
}

function tokenOf(result: AcquireResult): number {
  if (!result.acquired) throw new Error('expected the lock to be granted')
  return result.fencingToken
}

/** Delegates to `locks`, and tells when its first acquire was answered. */
function watchFirstReply(locks: LockStore): { locks: LockStore; firstReply: Promise<AcquireResult> } {
  let answered: (result: AcquireResult) => void = () => {}
  const firstReply = new Promise<AcquireResult>((resolve) => {
    answered = resolve
  })
  return {
    firstReply,
    locks: {
      acquire: async (key, owner, ttl, wait) => {
        const result = await locks.acquire(key, owner, ttl, wait)
        answered(result)
        return result
      },
      release: (key, owner) => locks.release(key, owner),
      extend: (key, owner, ttl) => locks.extend(key, owner, ttl),
      forceRelease: (key) => locks.forceRelease(key),
      isLocked: (key) => locks.isLocked(key),
      leaveQueue: (key, owner) => locks.leaveQueue?.(key, owner) ?? Promise.resolve(),
    },
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

beforeAll(async () => {
  await store().isLocked('warm-up')
})

afterAll(() => {
  for (const created of clients) created.destroy()
})

describe('racing joiners and acquirers on separate clients', () => {
  test('joiners racing for places get distinct positions, and the lock in exactly that order, one at a time', async () => {
    const key = uniqueKey()
    const holderStore = store()
    tokenOf(await holderStore.acquire(key, 'holder', TTL))
    const count = 12
    const waiters = Array.from({ length: count }, (_, i) => ({ owner: `waiter-${i}`, locks: store() }))
    // All join at the same moment: each join is a conditional write that some of them lose and redo.
    const joined = await Promise.all(waiters.map(({ owner, locks }) => locks.acquire(key, owner, TTL, { lease: 5000 })))
    const positions = joined.map(position)
    expect([...positions].sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: count }, (_, i) => i))
    const queueOrder = waiters.map((_, i) => i).sort((a, b) => Number(positions[a]) - Number(positions[b]))

    // Barging acquirers without a place hammer the key the whole time, from their own clients.
    const bargers = Array.from({ length: 3 }, (_, i) => ({ owner: `barger-${i}`, locks: store() }))
    let draining = true
    const bargerTokens: number[] = []
    const barging = Promise.all(
      bargers.map(async ({ owner, locks }) => {
        while (draining) {
          const reply = await locks.acquire(key, owner, TTL)
          if (reply.acquired) {
            bargerTokens.push(reply.fencingToken)
            await locks.release(key, owner)
          }
          await sleep(5)
        }
      }),
    )
    const granted: number[] = []
    const tokens: number[] = []
    let inside = 0
    let maxInside = 0
    expect(await holderStore.release(key, 'holder')).toBe(true)
    // Every waiter polls as fast as it can; only the head may win.
    await Promise.all(
      waiters.map(async ({ owner, locks }, i) => {
        for (;;) {
          const reply = await locks.acquire(key, owner, TTL, { lease: 5000 })
          if (reply.acquired) {
            inside++
            maxInside = Math.max(maxInside, inside)
            granted.push(i)
            tokens.push(reply.fencingToken)
            await sleep(3)
            inside--
            expect(await locks.release(key, owner)).toBe(true)
            return
          }
          await sleep(5)
        }
      }),
    )
    draining = false
    await barging
    expect(maxInside).toBe(1)
    expect(granted).toEqual(queueOrder)
    // A barger may only have won after the last waiter had its turn.
    for (const token of bargerTokens) expect(token).toBeGreaterThan(Math.max(...tokens))
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!)
    // Once the queue drained, the key is free for anyone again.
    expect((await bargers[0]!.locks.acquire(key, 'late', TTL)).acquired).toBe(true)
    expect((await rawItem(key))?.queue).toBeUndefined()
  })

  test('Locks on separate clients, queued behind a holder, run in the order they joined, never two at once', async () => {
    const key = uniqueKey()
    const holder = new LockFactory(store()).createLock(key, '10s')
    expect(await holder.acquire()).toBe(true)
    const count = 8
    const order: number[] = []
    let inside = 0
    let maxInside = 0
    const runs: Promise<unknown>[] = []
    for (let i = 0; i < count; i++) {
      const { locks, firstReply } = watchFirstReply(store())
      const factory = new LockFactory(locks, { retry: { delay: 5, timeout: '30s' } })
      runs.push(
        factory.createLock(key, '10s').run(async () => {
          inside++
          maxInside = Math.max(maxInside, inside)
          order.push(i)
          await sleep(2)
          inside--
        }),
      )
      // The next one starts only once this one's first attempt has taken its place.
      expect(position(await firstReply)).toBe(i)
    }
    await holder.release()
    await Promise.all(runs)
    expect(maxInside).toBe(1)
    expect(order).toEqual(Array.from({ length: count }, (_, i) => i))
  })

  test('many Locks on separate clients, each asking again at once after its turn: no overlap, no lost update, nobody starves', async () => {
    const key = uniqueKey()
    const workers = 6
    const rounds = 4
    let counter = 0
    let inside = 0
    let maxInside = 0
    const perWorker = Array.from({ length: workers }, () => 0)
    await Promise.all(
      Array.from({ length: workers }, () => store()).map(async (locks, i) => {
        const factory = new LockFactory(locks, { retry: { delay: 5, timeout: '30s' } })
        for (let round = 0; round < rounds; round++) {
          const [ran] = await factory.createLock(key, '10s').run(async () => {
            inside++
            maxInside = Math.max(maxInside, inside)
            const read = counter
            await sleep(1)
            counter = read + 1
            perWorker[i]!++
            inside--
          })
          expect(ran).toBe(true)
        }
      }),
    )
    expect(maxInside).toBe(1)
    expect(counter).toBe(workers * rounds)
    expect(perWorker).toEqual(Array.from({ length: workers }, () => rounds))
  })
})

describe('place leases', () => {
  test('a dead head is skipped once its place lease has been over for the allowance, and dropped', async () => {
    const clock = manualClock()
    const [holderStore, deadStore, nextStore] = [
      store({ clock: clock.read }),
      store({ clock: clock.read }),
      store({ clock: clock.read }),
    ]
    const key = uniqueKey()
    tokenOf(await holderStore.acquire(key, 'holder', TTL))
    expect(position(await deadStore.acquire(key, 'dead', TTL, { lease: 300 }))).toBe(0)
    expect(position(await nextStore.acquire(key, 'next', TTL, { lease: 5000 }))).toBe(1)
    expect(await holderStore.release(key, 'holder')).toBe(true)
    // The head never comes back. Until its place lease plus the allowance (50) has passed, it holds up the next.
    clock.advance(349)
    expect(position(await nextStore.acquire(key, 'next', TTL, { lease: 5000 }))).toBe(1)
    expect((await holderStore.acquire(key, 'newcomer', TTL)).acquired).toBe(false)
    clock.advance(1)
    const granted = await nextStore.acquire(key, 'next', TTL, { lease: 5000 })
    expect(granted.acquired).toBe(true)
    const item = await rawItem(key)
    expect(item?.owner?.S).toBe('next')
    expect(item?.queue).toBeUndefined() // the dead place went with the grant
    // The dead waiter comes back: its place is gone, it queues again at the tail.
    expect(position(await deadStore.acquire(key, 'dead', TTL, { lease: 300 }))).toBe(0)
  })

  test('a waiter cannot revive its own place once its own clock says the lease ended: it rejoins at the tail', async () => {
    const clock = manualClock()
    const [a, b, c] = [store({ clock: clock.read }), store({ clock: clock.read }), store({ clock: clock.read })]
    const key = uniqueKey()
    tokenOf(await a.acquire(key, 'holder', TTL))
    expect(position(await b.acquire(key, 'late', TTL, { lease: 300 }))).toBe(0)
    expect(position(await c.acquire(key, 'steady', TTL, { lease: 5000 }))).toBe(1)
    clock.advance(320) // over for 'late' itself, but within the allowance for everyone else
    expect(position(await b.acquire(key, 'late', TTL, { lease: 300 }))).toBe(1)
    expect(position(await c.acquire(key, 'steady', TTL, { lease: 5000 }))).toBe(0)
  })

  test('renewing keeps the place: a renewed head is not skipped after its first lease', async () => {
    const clock = manualClock()
    const [a, b, c] = [store({ clock: clock.read }), store({ clock: clock.read }), store({ clock: clock.read })]
    const key = uniqueKey()
    tokenOf(await a.acquire(key, 'holder', TTL))
    await b.acquire(key, 'first', TTL, { lease: 300 })
    await c.acquire(key, 'second', TTL, { lease: 5000 })
    for (let step = 0; step < 5; step++) {
      clock.advance(200)
      expect(position(await b.acquire(key, 'first', TTL, { lease: 300 }))).toBe(0)
    }
    expect(await a.release(key, 'holder')).toBe(true)
    expect(position(await c.acquire(key, 'second', TTL, { lease: 5000 }))).toBe(1)
    tokenOf(await b.acquire(key, 'first', TTL, { lease: 300 }))
  })

  test('a queue of dead places does not hold up anyone: a newcomer without wait takes the lock and drops it', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read })
    const key = uniqueKey()
    tokenOf(await a.acquire(key, 'holder', TTL))
    await a.acquire(key, 'gone-1', TTL, { lease: 200 })
    await a.acquire(key, 'gone-2', TTL, { lease: 200 })
    expect(await a.release(key, 'holder')).toBe(true)
    expect(await a.isLocked(key)).toBe(false) // a queue is not a holder
    clock.advance(251)
    tokenOf(await a.acquire(key, 'newcomer', TTL))
    expect((await rawItem(key))?.queue).toBeUndefined()
  })

  test('with clocks within the allowance, a client running ahead does not skip a live place', async () => {
    const clock = manualClock()
    const holderStore = store({ clock: clock.read, clockSkewAllowance: 500 })
    const waiter = store({ clock: clock.read, clockSkewAllowance: 500 })
    const fast = store({ clock: () => clock.read() + 300, clockSkewAllowance: 500 })
    const key = uniqueKey()
    tokenOf(await holderStore.acquire(key, 'holder', TTL))
    await waiter.acquire(key, 'waiter', TTL, { lease: 1000 })
    expect(await holderStore.release(key, 'holder')).toBe(true)
    clock.advance(900) // the place has 100 ms left on the waiter's clock; the fast clock says it ended 200 ms ago
    expect((await fast.acquire(key, 'fast', TTL)).acquired).toBe(false)
    tokenOf(await waiter.acquire(key, 'waiter', TTL, { lease: 1000 }))
  })

  test('a place lease is capped at MAX_PLACE_LEASE_MS', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read })
    const key = uniqueKey()
    tokenOf(await a.acquire(key, 'holder', TTL))
    await a.acquire(key, 'patient', TTL, { lease: 5 * HOUR })
    const place = (await rawItem(key))?.queue?.M?.patient?.M
    expect(Number(place?.leaseEnd?.N)).toBe(clock.read() + MAX_PLACE_LEASE_MS)
    expect(MAX_PLACE_LEASE_MS).toBe(HOUR / 2)
  })
})

describe('the TTL attribute and live places', () => {
  /** The item's TTL in ms, and the latest place lease end in it. */
  async function ttlAndLatestPlace(key: string) {
    const item = await rawItem(key)
    const ends = Object.values(item?.queue?.M ?? {}).map((place) => Number(place.M?.leaseEnd?.N))
    return { ttl: Number(item?.ttl?.N) * 1000, latestPlace: Math.max(...ends) }
  }

  test('a renewal that would outlive the item TTL raises it, keeping the place', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read })
    const key = uniqueKey()
    tokenOf(await a.acquire(key, 'holder', TTL))
    await a.acquire(key, 'first', TTL, { lease: 5000 })
    await a.acquire(key, 'second', TTL, { lease: 5000 })
    // No write of the store leaves a TTL this low under a live place; forge one to reach that safety net.
    await client().send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk: { S: key } },
        UpdateExpression: 'SET #ttl = :ttl',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':ttl': { N: String(Math.ceil(clock.read() / 1000) + 1) } },
      }),
    )
    clock.advance(1000)
    expect(position(await a.acquire(key, 'second', TTL, { lease: 5000 }))).toBe(1)
    const { ttl, latestPlace } = await ttlAndLatestPlace(key)
    expect(latestPlace).toBe(clock.read() + 5000)
    expect(ttl).toBeGreaterThanOrEqual(latestPlace + 50 + HOUR)
    expect(position(await a.acquire(key, 'first', TTL, { lease: 5000 }))).toBe(0)
  })

  test('release, extend and force release keep the TTL past every live place', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read })
    const key = uniqueKey()
    tokenOf(await a.acquire(key, 'holder', null)) // held without expiry: no TTL at all
    await a.acquire(key, 'patient', TTL, { lease: MAX_PLACE_LEASE_MS })
    expect((await rawItem(key))?.ttl).toBeUndefined()
    for (const step of [
      () => a.extend(key, 'holder', 1000),
      () => a.release(key, 'holder'),
      async () => {
        tokenOf(await a.acquire(key, 'patient', 1000, { lease: MAX_PLACE_LEASE_MS }))
        await a.acquire(key, 'next', TTL, { lease: MAX_PLACE_LEASE_MS })
        await a.forceRelease(key)
      },
    ]) {
      await step()
      const { ttl, latestPlace } = await ttlAndLatestPlace(key)
      expect(ttl).toBeGreaterThanOrEqual(latestPlace + 50)
    }
  })

  test('a waiter behind a lock held without expiry leaves the item without TTL', async () => {
    const a = store()
    const key = uniqueKey()
    tokenOf(await a.acquire(key, 'holder', null))
    await a.acquire(key, 'waiter', TTL, { lease: 5000 })
    await a.acquire(key, 'waiter', TTL, { lease: 5000 })
    expect((await rawItem(key))?.ttl).toBeUndefined()
    expect((await rawItem(key))?.queue?.M?.waiter).toBeDefined()
  })
})

describe('requests per operation', () => {
  test('uncontended acquire, with or without wait, and release are one request each', async () => {
    const { sent, locks } = countedStore()
    const key = uniqueKey()
    await locks.isLocked(key)
    sent.length = 0
    tokenOf(await locks.acquire(key, 'a', TTL, { lease: 2000 }))
    await locks.release(key, 'a')
    tokenOf(await locks.acquire(key, 'b', TTL))
    await locks.release(key, 'b')
    expect(sent).toEqual(['UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand'])
  })

  test('after a queue drained, acquiring the key is one request again', async () => {
    const { sent, locks } = countedStore()
    const key = uniqueKey()
    tokenOf(await locks.acquire(key, 'holder', TTL))
    await locks.acquire(key, 'waiter', TTL, { lease: 2000 })
    await locks.release(key, 'holder')
    tokenOf(await locks.acquire(key, 'waiter', TTL, { lease: 2000 }))
    await locks.release(key, 'waiter')
    sent.length = 0
    tokenOf(await locks.acquire(key, 'later', TTL, { lease: 2000 }))
    expect(sent).toEqual(['UpdateItemCommand'])
  })

  test('joining is two requests, polling one read, leaving one; the head takes a freed lock in two', async () => {
    const holderStore = store()
    const clock = manualClock()
    const { sent, locks } = countedStore({ clock: clock.read })
    const key = uniqueKey()
    tokenOf(await holderStore.acquire(key, 'holder', TTL))
    await locks.isLocked(key)
    const requests: string[][] = []
    const count = async (operation: () => Promise<unknown>) => {
      sent.length = 0
      await operation()
      requests.push([...sent])
    }
    const update = 'UpdateItemCommand'
    const read = 'GetItemCommand'
    await count(() => locks.acquire(key, 'waiter', TTL, { lease: 2000 }))
    // Polls within a quarter of the place lease of its last write only read: no write unit, no contention.
    await count(() => locks.acquire(key, 'waiter', TTL, { lease: 2000 }))
    clock.advance(400)
    await count(() => locks.acquire(key, 'waiter', TTL, { lease: 2000 }))
    // Past a quarter of the lease, the poll renews its place: one conditional write.
    clock.advance(200)
    await count(() => locks.acquire(key, 'waiter', TTL, { lease: 2000 }))
    await count(() => locks.acquire(key, 'other', TTL, { lease: 2000 }))
    await count(() => locks.leaveQueue(key, 'other'))
    await count(() => locks.leaveQueue(key, 'other'))
    await holderStore.release(key, 'holder')
    // The head reads that the lock is free for it, then takes it with a write guarded on what it read.
    await count(async () => tokenOf(await locks.acquire(key, 'waiter', TTL, { lease: 2000 })))
    expect(requests).toEqual([[update, update], [read], [read], [update], [update, update], [update], [update], [read, update]])
  })

  test('a poll that only read keeps the place: the place is renewed by the next write, in time', async () => {
    const holderStore = store()
    const clock = manualClock()
    const { sent, locks } = countedStore({ clock: clock.read })
    const key = uniqueKey()
    tokenOf(await holderStore.acquire(key, 'holder', TTL))
    expect(position(await locks.acquire(key, 'waiter', TTL, { lease: 2000 }))).toBe(0)
    // Poll every 300 ms of the store's clock for 3 s, past the 2 s lease: reads and renewals alternate.
    for (let poll = 0; poll < 10; poll++) {
      clock.advance(300)
      sent.length = 0
      expect(position(await locks.acquire(key, 'waiter', TTL, { lease: 2000 }))).toBe(0)
      expect(sent).toHaveLength(1)
    }
    const leaseEnd = Number((await rawItem(key))?.queue?.M?.waiter?.M?.leaseEnd?.N)
    // Written at most 600 ms of the store's clock ago: the place outlives the next poll by far.
    expect(leaseEnd).toBeGreaterThanOrEqual(clock.read() + 2000 - 600)
  })
})

describe('renewing in one request', () => {
  test('a waiter behind a live place renews in one request even while the lock is free', async () => {
    const holderStore = store()
    const headStore = store()
    const { sent, locks } = countedStore()
    const key = uniqueKey()
    tokenOf(await holderStore.acquire(key, 'holder', TTL))
    await headStore.acquire(key, 'head', TTL, { lease: 5000 })
    await locks.acquire(key, 'second', TTL, { lease: 5000 })
    await locks.acquire(key, 'third', TTL, { lease: 5000 })
    expect(await holderStore.release(key, 'holder')).toBe(true)
    // The head has not claimed it yet: the lock is free, but a live place stands ahead of each of them.
    sent.length = 0
    expect(position(await locks.acquire(key, 'second', TTL, { lease: 5000 }))).toBe(1)
    expect(position(await locks.acquire(key, 'third', TTL, { lease: 5000 }))).toBe(2)
    expect(sent).toHaveLength(2)
    // The place ahead of 'second' leaves: the one-request renewal no longer applies, and 'second' is first.
    await headStore.leaveQueue(key, 'head')
    sent.length = 0
    tokenOf(await locks.acquire(key, 'second', TTL, { lease: 5000 }))
    expect(sent).toHaveLength(2)
    // 'third' renewed behind 'second', which is no longer queued: it learns it is first, and waits for the holder.
    expect(position(await locks.acquire(key, 'third', TTL, { lease: 5000 }))).toBe(0)
  })
})

describe('leaveQueue', () => {
  test('is idempotent, and works for owners that look like expression syntax', async () => {
    const a = store()
    const key = uniqueKey()
    const owners = ['#queue', 'a.b.c', ':owner', 'é 🔒 "x"', 'queue[0]']
    tokenOf(await a.acquire(key, 'holder', TTL))
    for (const owner of owners) await a.acquire(key, owner, TTL, { lease: 5000 })
    expect(Object.keys((await rawItem(key))?.queue?.M ?? {}).sort()).toEqual([...owners].sort())
    await a.leaveQueue(key, owners[0]!)
    await a.leaveQueue(key, owners[0]!)
    await a.leaveQueue(key, 'never-joined')
    await a.leaveQueue(uniqueKey(), 'no-item')
    expect(position(await a.acquire(key, owners[1]!, TTL, { lease: 5000 }))).toBe(0)
    for (const owner of owners.slice(1)) await a.leaveQueue(key, owner)
    expect(await a.release(key, 'holder')).toBe(true)
    // Left as an empty map: still one request to acquire.
    const { sent, locks } = countedStore()
    await locks.isLocked(key)
    sent.length = 0
    tokenOf(await locks.acquire(key, 'newcomer', TTL))
    expect(sent).toHaveLength(1)
  })
})

describe('requests the SDK retried after a lost reply', () => {
  test('a join whose first attempt succeeded keeps one place and reports it', async () => {
    const own = client()
    const locks = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: 50 })
    const key = uniqueKey()
    tokenOf(await store().acquire(key, 'holder', TTL))
    await locks.acquire(key, 'first', TTL, { lease: 5000 })
    // The failed uncontended write throws before the reply is lost: the join's reply is the one lost.
    loseNextReply(own)
    expect(position(await locks.acquire(key, 'second', TTL, { lease: 5000 }))).toBe(1)
    expect(Object.keys((await rawItem(key))?.queue?.M ?? {}).sort()).toEqual(['first', 'second'])
  })

  test('a grant to the head whose first attempt succeeded reports the lock as acquired', async () => {
    const own = client()
    const locks = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: 50 })
    const holderStore = store()
    const key = uniqueKey()
    tokenOf(await holderStore.acquire(key, 'holder', TTL))
    await locks.acquire(key, 'head', TTL, { lease: 5000 })
    await holderStore.release(key, 'holder')
    loseNextReply(own)
    const result = await locks.acquire(key, 'head', TTL, { lease: 5000 })
    const item = await rawItem(key)
    expect(result).toEqual({ acquired: true, fencingToken: Number(item?.fencingToken?.N) })
    expect(item?.owner?.S).toBe('head')
  })
})

describe('failures', () => {
  test('a queue attribute that is not a map of places is a storage error, never an answer', async () => {
    const a = store()
    const key = uniqueKey()
    tokenOf(await a.acquire(key, 'holder', TTL))
    await client().send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk: { S: key } },
        UpdateExpression: 'SET #queue = :queue',
        ExpressionAttributeNames: { '#queue': 'queue' },
        ExpressionAttributeValues: { ':queue': { M: { someone: { S: 'not a place' } } } },
      }),
    )
    await expect(a.acquire(key, 'waiter', TTL, { lease: 5000 })).rejects.toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    await expect(a.acquire(key, 'other', TTL)).rejects.toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
  })

  test('a join that keeps losing races gives up after a bounded number of writes, claiming no place', async () => {
    const own = client()
    const rival = client()
    const sent = recordCommands(own)
    const locks = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: 50 })
    const key = uniqueKey()
    tokenOf(await store().acquire(key, 'holder', TTL))
    await locks.isLocked(key) // the table check
    // Before every guarded write of `locks`, another client changes the item's write id: every race is lost.
    own.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { ConditionExpression?: string }
        if (input.ConditionExpression?.includes('#write = :seen')) {
          await rival.send(
            new UpdateItemCommand({
              TableName: table,
              Key: { pk: { S: key } },
              UpdateExpression: 'SET #write = :write',
              ExpressionAttributeNames: { '#write': 'lastWrite' },
              ExpressionAttributeValues: { ':write': { S: `rival-${Math.random()}` } },
            }),
          )
        }
        return next(args)
      },
      { step: 'initialize', name: 'verrouLoseEveryRace' },
    )
    sent.length = 0
    const reply = await locks.acquire(key, 'unlucky', TTL, { lease: 5000 })
    expect(reply).toEqual({ acquired: false, expiresIn: expect.any(Number) })
    expect(sent).toHaveLength(1 + 25) // the uncontended write, then the bounded guarded ones
    expect((await rawItem(key))?.queue).toBeUndefined()
    rival.destroy()
  })
})
