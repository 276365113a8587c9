import { type AttributeValue, type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb'
import type { AcquireResult } from '@verrou/core'
import { afterAll, describe, expect, test } from 'vitest'
import { recordCommands, testClient, uniqueKey, uniqueTableName } from '../test/client.js'
import { type DynamoDBStore, dynamodbStore } from './store.js'

const table = uniqueTableName('handover')
const clients: DynamoDBClient[] = []
const TTL = 10_000
const WAIT = { lease: 5_000 }
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

afterAll(() => {
  for (const each of clients) each.destroy()
})

function client(): DynamoDBClient {
  const created = testClient()
  clients.push(created)
  return created
}

/** A store with its own client (a separate process), and the commands it sends. */
function processStore(own = client()): { locks: DynamoDBStore; sent: string[] } {
  const sent = recordCommands(own)
  return { sent, locks: dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: 50 }) }
}

/** Holds every UpdateItem of `own` until `open` is called (reads go through). */
function gateUpdates(own: DynamoDBClient): { open: () => void } {
  let open: () => void = () => {}
  const gate = new Promise<void>((resolve) => {
    open = resolve
  })
  own.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UpdateItemCommand') await gate
      return next(args)
    },
    { step: 'initialize', name: 'verrouGateUpdates' },
  )
  return { open }
}

async function rawItem(key: string): Promise<Record<string, AttributeValue> | undefined> {
  const output = await client().send(new GetItemCommand({ TableName: table, Key: { pk: { S: key } }, ConsistentRead: true }))
  return output.Item
}

function handedOf(result: AcquireResult) {
  if (!result.acquired || result.handedOver === undefined) throw new Error(`not handed over: ${JSON.stringify(result)}`)
  return { token: result.fencingToken, ...result.handedOver }
}

/**
 * `holder` is granted the key while `heir` already waits (so it knows its heir), then `next` joins too. The
 * holder's grant comes from a queue statement: the first holder leaves and `holder` is granted behind it.
 */
async function queueBehind(key: string, holder: DynamoDBStore, heir: DynamoDBStore, next?: DynamoDBStore): Promise<number> {
  const first = processStore().locks
  await first.acquire(key, 'first', TTL)
  expect(await holder.acquire(key, 'holder', TTL, WAIT)).toMatchObject({ acquired: false, position: 0 })
  expect(await heir.acquire(key, 'heir', TTL, WAIT)).toMatchObject({ acquired: false, position: 1 })
  if (next !== undefined) expect(await next.acquire(key, 'next', TTL, WAIT)).toMatchObject({ acquired: false, position: 2 })
  // The first holder's store knew no heir: a plain release; `holder` takes the lock by its own writes.
  expect(await first.release(key, 'first')).toBe(true)
  const held = await holder.acquire(key, 'holder', TTL, WAIT)
  if (!held.acquired) throw new Error('holder was not granted')
  return held.fencingToken
}

describe('DynamoDB hand-over', () => {
  test('a release hands the lock to the first live waiter, whose next poll is one read, then one claim', async () => {
    const key = uniqueKey()
    const holder = processStore()
    const heir = processStore()
    const next = processStore()
    const held = await queueBehind(key, holder.locks, heir.locks, next.locks)
    const before = await rawItem(key)
    const heirPlaceEnd = Number(before?.queue?.M?.heir?.M?.leaseEnd?.N)
    holder.sent.length = 0
    expect(await holder.locks.release(key, 'holder')).toBe(true)
    expect(holder.sent).toEqual(['UpdateItemCommand'])
    const handed = await rawItem(key)
    expect(handed?.owner?.S).toBe('heir')
    expect(handed?.handedTo?.S).toBe('heir')
    expect(Number(handed?.fencingToken?.N)).toBe(held + 1)
    expect(Number(handed?.expiresAt?.N)).toBe(heirPlaceEnd)
    expect(Object.keys(handed?.queue?.M ?? {})).toEqual(['next'])
    // Nobody else gets it meanwhile, with or without a place.
    expect(await next.locks.acquire(key, 'next', TTL, WAIT)).toMatchObject({ acquired: false, position: 0 })
    expect(await holder.locks.acquire(key, 'newcomer', TTL)).toMatchObject({ acquired: false })
    heir.sent.length = 0
    const startedAt = Date.now()
    const taken = handedOf(await heir.locks.acquire(key, 'heir', TTL, WAIT))
    expect(taken.token).toBe(held + 1)
    expect(taken.lease).toBeLessThanOrEqual(heirPlaceEnd - startedAt)
    expect(taken.lease).toBeGreaterThan(0)
    expect(await taken.claimed).toBe(true)
    expect(heir.sent).toEqual(['GetItemCommand', 'UpdateItemCommand'])
    const claimed = await rawItem(key)
    expect(claimed?.handedTo).toBeUndefined()
    expect(Number(claimed?.expiresAt?.N)).toBeGreaterThan(Date.now() + TTL - 2_000)
    // The heir holds it as any holder does, and hands it on in turn.
    expect(await heir.locks.release(key, 'heir')).toBe(true)
    expect(handedOf(await next.locks.acquire(key, 'next', TTL, WAIT)).token).toBe(held + 2)
  })

  test('an heir that releases within the first quarter of its window never sends the claim, and hands the lock on', async () => {
    const key = uniqueKey()
    const holder = processStore().locks
    const heir = processStore()
    const next = processStore().locks
    const held = await queueBehind(key, holder, heir.locks, next)
    expect(await holder.release(key, 'holder')).toBe(true)
    heir.sent.length = 0
    const handed = handedOf(await heir.locks.acquire(key, 'heir', TTL, WAIT))
    expect(await heir.locks.release(key, 'heir')).toBe(true)
    expect(await handed.claimed).toBe(false)
    await sleep(WAIT.lease * 0.25 + 200)
    expect(heir.sent).toEqual(['GetItemCommand', 'UpdateItemCommand'])
    expect(handedOf(await next.acquire(key, 'next', TTL, WAIT)).token).toBe(held + 2)
    expect(await next.release(key, 'next')).toBe(true)
  })

  test('an heir that asked for a ttl shorter than its window claims at once, bringing the lease down to that ttl', async () => {
    const key = uniqueKey()
    const holder = processStore().locks
    const heir = processStore().locks
    await queueBehind(key, holder, heir)
    expect(await holder.release(key, 'holder')).toBe(true)
    const windowEnd = Number((await rawItem(key))?.expiresAt?.N)
    const startedAt = Date.now()
    const handed = handedOf(await heir.acquire(key, 'heir', 300, WAIT))
    expect(await handed.claimed).toBe(true)
    expect(Date.now() - startedAt).toBeLessThan(WAIT.lease * 0.25)
    const claimedEnd = Number((await rawItem(key))?.expiresAt?.N)
    expect(claimedEnd).toBeLessThan(windowEnd)
    expect(claimedEnd).toBeLessThanOrEqual(Date.now() + 300)
    expect(await heir.release(key, 'heir')).toBe(true)
  })

  test('a waiter that gives up gives back a grant it never saw: the next in line gets the lock', async () => {
    const key = uniqueKey()
    const holder = processStore().locks
    const heir = processStore().locks
    const next = processStore().locks
    const held = await queueBehind(key, holder, heir, next)
    expect(await holder.release(key, 'holder')).toBe(true)
    await heir.leaveQueue(key, 'heir')
    const item = await rawItem(key)
    expect(item?.owner).toBeUndefined()
    expect(item?.handedTo).toBeUndefined()
    const taken = await next.acquire(key, 'next', TTL, WAIT)
    expect(taken.acquired && taken.fencingToken).toBeGreaterThan(held + 1)
    expect(await heir.release(key, 'heir')).toBe(false)
    expect(await heir.extend(key, 'heir', TTL)).toBe(false)
    expect(await next.release(key, 'next')).toBe(true)
  })

  test('a grant taken back by a force release before the heir claims it is never claimed', async () => {
    const key = uniqueKey()
    const holder = processStore().locks
    const heirClient = client()
    const heir = processStore(heirClient).locks
    const held = await queueBehind(key, holder, heir)
    expect(await holder.release(key, 'holder')).toBe(true)
    // The heir's writes wait: its read answers, its claim lands after the force release.
    const gate = gateUpdates(heirClient)
    const handed = handedOf(await heir.acquire(key, 'heir', TTL, WAIT))
    expect(handed.token).toBe(held + 1)
    await holder.forceRelease(key)
    const rival = await holder.acquire(key, 'rival', TTL)
    expect(rival.acquired && rival.fencingToken).toBeGreaterThan(handed.token)
    gate.open()
    expect(await handed.claimed).toBe(false)
    expect((await rawItem(key))?.owner?.S).toBe('rival')
    expect(await heir.release(key, 'heir')).toBe(false)
    expect(await holder.release(key, 'rival')).toBe(true)
  })

  test('an extend that overtakes the claim (from another client of the same owner) does not make the claim fail', async () => {
    const key = uniqueKey()
    const holder = processStore().locks
    const heirClient = client()
    const heir = processStore(heirClient).locks
    await queueBehind(key, holder, heir)
    expect(await holder.release(key, 'holder')).toBe(true)
    const gate = gateUpdates(heirClient)
    const handed = handedOf(await heir.acquire(key, 'heir', TTL, WAIT))
    expect(await processStore().locks.extend(key, 'heir', 3_000)).toBe(true)
    gate.open()
    expect(await handed.claimed).toBe(true)
    const item = await rawItem(key)
    expect(item?.handedTo).toBeUndefined()
    expect(Number(item?.fencingToken?.N)).toBe(handed.token)
    // The claim's ttl is the lease now, as its answer tells Lock.
    expect(Number(item?.expiresAt?.N)).toBeGreaterThan(Date.now() + TTL - 2_000)
    expect(await heir.release(key, 'heir')).toBe(true)
  })

  test('an heir that never polls again holds up the next only until its place lease ends', async () => {
    const key = uniqueKey()
    const first = processStore().locks
    const holder = processStore().locks
    const heir = processStore().locks
    const next = processStore().locks
    await first.acquire(key, 'first', TTL)
    expect(await holder.acquire(key, 'holder', TTL, WAIT)).toMatchObject({ acquired: false, position: 0 })
    expect(await heir.acquire(key, 'heir', TTL, { lease: 400 })).toMatchObject({ acquired: false, position: 1 })
    expect(await next.acquire(key, 'next', TTL, WAIT)).toMatchObject({ acquired: false, position: 2 })
    await first.release(key, 'first')
    expect(await holder.acquire(key, 'holder', TTL, WAIT)).toMatchObject({ acquired: true })
    const releasedAt = Date.now()
    expect(await holder.release(key, 'holder')).toBe(true)
    expect((await rawItem(key))?.handedTo?.S).toBe('heir')
    let taken: AcquireResult = { acquired: false }
    while (!taken.acquired) {
      taken = await next.acquire(key, 'next', TTL, WAIT)
      if (!taken.acquired) await sleep(20)
    }
    const waited = Date.now() - releasedAt
    expect(waited).toBeGreaterThan(250)
    expect(waited).toBeLessThan(1_500)
    expect(taken.handedOver).toBeUndefined()
    expect(await next.release(key, 'next')).toBe(true)
  })

  test('a release whose heir left meanwhile releases plainly, and the next waiter takes the lock by its own writes', async () => {
    const key = uniqueKey()
    const holder = processStore().locks
    const heir = processStore().locks
    const next = processStore().locks
    await queueBehind(key, holder, heir, next)
    await heir.leaveQueue(key, 'heir')
    expect(await holder.release(key, 'holder')).toBe(true)
    const item = await rawItem(key)
    expect(item?.owner).toBeUndefined()
    expect(item?.handedTo).toBeUndefined()
    const taken = await next.acquire(key, 'next', TTL, WAIT)
    expect(taken).toMatchObject({ acquired: true })
    expect(taken.acquired && taken.handedOver).toBeUndefined()
    // A stale release of the same holder changes nothing.
    expect(await holder.release(key, 'holder')).toBe(false)
    expect(await next.release(key, 'next')).toBe(true)
  })
})
