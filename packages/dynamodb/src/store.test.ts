import { type AttributeValue, DeleteItemCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb'
import { errors, LockFactory } from '@verrou/core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { loseNextReply, recordCommands, testClient, uniqueKey, uniqueTableName } from '../test/client.js'
import { refusingEndpoint, silentEndpoint } from '../test/dead_endpoint.js'
import { type DynamoDBStoreOptions, dynamodbStore } from './store.js'

const table = uniqueTableName('store')
const clients: DynamoDBClient[] = []
const HOUR = 60 * 60 * 1000

function client(endpoint?: string, options?: Parameters<typeof testClient>[1]): DynamoDBClient {
  const created = testClient(endpoint, options)
  clients.push(created)
  return created
}

/** A store on the shared table; each has its own client, like a separate process. */
function store(options: Partial<DynamoDBStoreOptions> = {}) {
  return dynamodbStore({ client: client(), table: { name: table }, clockSkewAllowance: 50, ...options })
}

/** A hand-driven wall clock: DynamoDB never looks at time itself, so leases follow these clocks exactly. */
function manualClock(start = Date.now()) {
  let now = start
  return {
    read: () => now,
    advance: (ms: number) => {
      now += ms
    },
    skewed: (offset: number) => () => now + offset,
  }
}

async function rawItem(key: string): Promise<Record<string, AttributeValue> | undefined> {
  const output = await client().send(new GetItemCommand({ TableName: table, Key: { pk: { S: key } }, ConsistentRead: true }))
  return output.Item
}

beforeAll(async () => {
  // The first operation creates the table; later tests then measure plain operations.
  await store().isLocked('warm-up')
})

afterAll(() => {
  for (const created of clients) created.destroy()
})

describe('DynamoDBStore operations', () => {
  test('each operation is one request once the table is ready', async () => {
    const own = client()
    const sent = recordCommands(own)
    const locks = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: 50 })
    const key = uniqueKey()
    await locks.isLocked(key)
    sent.length = 0 // table check done

    await locks.acquire(key, 'a', 10_000)
    await locks.acquire(key, 'b', 10_000)
    await locks.isLocked(key)
    await locks.extend(key, 'a', 10_000)
    await locks.release(key, 'a')
    await locks.forceRelease(key)
    expect(sent).toEqual([
      'UpdateItemCommand',
      'UpdateItemCommand',
      'GetItemCommand',
      'UpdateItemCommand',
      'UpdateItemCommand',
      'UpdateItemCommand',
    ])
  })

  test('a failed acquire reports when the holder lease ends, allowance included, in the same request', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read, clockSkewAllowance: 200 })
    const b = store({ clock: clock.read, clockSkewAllowance: 200 })
    const key = uniqueKey()
    expect((await a.acquire(key, 'a', 1000)).acquired).toBe(true)
    clock.advance(300)
    expect(await b.acquire(key, 'b', 1000)).toEqual({ acquired: false, expiresIn: 900 })
    expect(await b.acquire(key, 'a', 1000)).toEqual({ acquired: false, expiresIn: 900 }) // not re-entrant
  })

  test('a lease without expiry is held until released, and has no TTL attribute', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read })
    const key = uniqueKey()
    await a.acquire(key, 'a', null)
    clock.advance(365 * 24 * HOUR)
    expect(await a.acquire(key, 'b', 1000)).toEqual({ acquired: false })
    expect(await a.isLocked(key)).toBe(true)
    const item = await rawItem(key)
    expect(item?.ttl).toBeUndefined()
    expect(item?.expiresAt).toBeUndefined()
    expect(await a.release(key, 'a')).toBe(true)
    expect(await a.isLocked(key)).toBe(false)
  })

  test('extend to no expiry, and back to a lease', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read })
    const key = uniqueKey()
    await a.acquire(key, 'a', 1000)
    expect(await a.extend(key, 'a', null)).toBe(true)
    clock.advance(10_000)
    expect(await a.isLocked(key)).toBe(true)
    expect(await a.extend(key, 'a', 1000)).toBe(true)
    clock.advance(1100)
    expect(await a.isLocked(key)).toBe(false)
    expect(await a.extend(key, 'a', 1000)).toBe(false)
  })

  test('the TTL attribute lets DynamoDB delete an item only an hour after its lease ended', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read, clockSkewAllowance: 50 })
    const key = uniqueKey()
    await a.acquire(key, 'a', 10_000)
    const held = await rawItem(key)
    expect(Number(held?.expiresAt?.N)).toBe(clock.read() + 10_000)
    expect(Number(held?.ttl?.N)).toBe(Math.ceil((clock.read() + 10_000 + 50 + HOUR) / 1000))
    clock.advance(1000)
    await a.release(key, 'a')
    const released = await rawItem(key)
    expect(released?.owner).toBeUndefined()
    expect(Number(released?.ttl?.N)).toBe(Math.ceil((clock.read() + 50 + HOUR) / 1000))
    expect(released?.fencingToken).toBeDefined() // the counter survives release
  })

  test('fencing tokens keep increasing across release, expiry and force release', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read })
    const key = uniqueKey()
    const tokens: number[] = []
    const take = async (owner: string) => {
      const result = await a.acquire(key, owner, 1000)
      if (!result.acquired) throw new Error('not acquired')
      tokens.push(result.fencingToken)
    }
    await take('a')
    await a.release(key, 'a')
    await take('b')
    clock.advance(2000) // b's lease expires
    await take('c')
    await a.forceRelease(key)
    await take('d')
    for (let index = 1; index < tokens.length; index++) expect(tokens[index]).toBe(tokens[index - 1]! + 1)
    expect(tokens.every((token) => Number.isSafeInteger(token) && token > 0)).toBe(true)
  })

  test('tokens stay above earlier ones after DynamoDB TTL deleted the item, even with a clock 50 minutes slow', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read })
    const key = uniqueKey()
    const first = await a.acquire(key, 'a', 1000)
    await a.release(key, 'a')
    // TTL deletes the item at the earliest an hour after its last use: do what it would do.
    await client().send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: key } } }))
    clock.advance(HOUR)
    const slow = store({ clock: clock.skewed(-50 * 60 * 1000) })
    const second = await slow.acquire(key, 'b', 1000)
    if (!first.acquired || !second.acquired) throw new Error('not acquired')
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken)
  })

  test('a stale owner can neither release nor extend a lock someone else took over', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read })
    const key = uniqueKey()
    await a.acquire(key, 'stale', 1000)
    clock.advance(1051)
    expect((await a.acquire(key, 'fresh', 1000)).acquired).toBe(true)
    expect(await a.release(key, 'stale')).toBe(false)
    expect(await a.extend(key, 'stale', 1000)).toBe(false)
    expect(await a.isLocked(key)).toBe(true)
    expect(await a.release(key, 'fresh')).toBe(true)
  })

  test('force release of a key never locked creates nothing', async () => {
    const key = uniqueKey()
    await store().forceRelease(key)
    expect(await rawItem(key)).toBeUndefined()
  })

  test('concurrent acquirers from separate clients: exactly one wins', async () => {
    const key = uniqueKey()
    const stores = Array.from({ length: 10 }, () => store())
    const results = await Promise.all(stores.map((each, index) => each.acquire(key, `owner-${index}`, 10_000)))
    expect(results.filter((result) => result.acquired)).toHaveLength(1)
  })

  test('through Lock: waiters take turns and tokens increase', async () => {
    const factory = new LockFactory(store(), { retry: { delay: 20 } })
    const key = uniqueKey()
    let inside = 0
    let maxInside = 0
    const seen: number[] = []
    await Promise.all(
      Array.from({ length: 5 }, () =>
        factory.createLock(key, '5s').run(async ({ fencingToken }) => {
          inside++
          maxInside = Math.max(maxInside, inside)
          seen.push(fencingToken ?? 0)
          await new Promise((resolve) => setTimeout(resolve, 10))
          inside--
        }),
      ),
    )
    expect(maxInside).toBe(1)
    expect(seen).toEqual([...seen].sort((x, y) => x - y))
    expect(new Set(seen).size).toBe(5)
  })
})

describe('clock skew between clients', () => {
  // A holds a 1000 ms lease written with its own clock; B's clock runs ahead. Time is driven by hand.
  async function scenario(skew: number, allowance: number) {
    const clock = manualClock()
    const a = store({ clock: clock.read, clockSkewAllowance: allowance })
    const b = store({ clock: clock.skewed(skew), clockSkewAllowance: allowance })
    const key = uniqueKey()
    expect((await a.acquire(key, 'a', 1000)).acquired).toBe(true)
    // 800 ms later A still has 200 ms of lease by its own clock; B's clock already says the lease is over.
    clock.advance(800)
    const taken = await b.acquire(key, 'b', 1000)
    return { taken, aCanStillExtend: await a.extend(key, 'a', 1000) }
  }

  test('within the allowance a fast clock cannot take a lease its holder still counts on', async () => {
    const { taken, aCanStillExtend } = await scenario(300, 500)
    expect(taken).toEqual({ acquired: false, expiresIn: 1000 + 500 - 1100 })
    expect(aCanStillExtend).toBe(true)
  })

  test('without an allowance the same skew lets two owners believe they hold the lock', async () => {
    const { taken, aCanStillExtend } = await scenario(300, 0)
    expect(taken.acquired).toBe(true)
    expect(aCanStillExtend).toBe(false) // A only learns it lost the lock on its next write
  })

  test('skew beyond the allowance breaks exclusion the same way: the documented limit', async () => {
    const { taken } = await scenario(700, 500)
    expect(taken.acquired).toBe(true)
  })

  test('a slow clock only delays a takeover', async () => {
    const clock = manualClock()
    const a = store({ clock: clock.read, clockSkewAllowance: 100 })
    const slow = store({ clock: clock.skewed(-300), clockSkewAllowance: 100 })
    const key = uniqueKey()
    await a.acquire(key, 'a', 1000)
    clock.advance(1200)
    expect(await a.isLocked(key)).toBe(false)
    expect(await slow.acquire(key, 'b', 1000)).toEqual({ acquired: false, expiresIn: 200 })
    clock.advance(200)
    expect((await slow.acquire(key, 'b', 1000)).acquired).toBe(true)
  })
})

describe('requests the SDK retried after a lost reply', () => {
  test('an acquire whose first attempt succeeded reports the lock as acquired, with its token', async () => {
    const own = client()
    const locks = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: 50 })
    const key = uniqueKey()
    await locks.isLocked(key)
    loseNextReply(own)
    const result = await locks.acquire(key, 'a', 10_000)
    expect(result.acquired).toBe(true)
    const item = await rawItem(key)
    expect(result).toEqual({ acquired: true, fencingToken: Number(item?.fencingToken?.N) })
    expect(item?.owner?.S).toBe('a')
  })

  test('a release whose first attempt succeeded reports the release', async () => {
    const own = client()
    const locks = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: 50 })
    const key = uniqueKey()
    await locks.acquire(key, 'a', 10_000)
    loseNextReply(own)
    expect(await locks.release(key, 'a')).toBe(true)
    expect(await locks.isLocked(key)).toBe(false)
  })

  test('another owner retrying still gets "not acquired"', async () => {
    const own = client()
    const locks = dynamodbStore({ client: own, table: { name: table }, clockSkewAllowance: 50 })
    const key = uniqueKey()
    await store().acquire(key, 'holder', 10_000)
    loseNextReply(own)
    expect((await locks.acquire(key, 'other', 10_000)).acquired).toBe(false)
  })
})

describe('keys', () => {
  /** Names for the test and how to build the key from a unique prefix (so runs never collide). */
  const unusual: [string, (prefix: string) => string][] = [
    ['emoji and spaces', (prefix) => `${prefix} 🔒 locked key`],
    ['Cyrillic and slashes', (prefix) => `${prefix}/ключ/блокировки`],
    ['quotes and backticks', (prefix) => `${prefix} "double" 'single' \`back\``],
    ['a NUL byte', (prefix) => `${prefix}\u0000byte`],
    ['newline and tab', (prefix) => `${prefix}\n\t`],
    ['expression placeholders', (prefix) => `#owner :owner ${prefix} attribute_not_exists(#owner)`],
    ['exactly 2048 ASCII bytes', (prefix) => prefix + 'x'.repeat(2048 - prefix.length)],
    ['2048 bytes with 3-byte characters', (prefix) => prefix.padEnd(2048 - 3 * 670, '-') + '€'.repeat(670)],
  ]

  test.each(unusual)('%s', async (_, build) => {
    const a = store()
    const key = build(uniqueKey())
    expect((await a.acquire(key, 'a', 10_000)).acquired).toBe(true)
    expect((await a.acquire(key, 'b', 10_000)).acquired).toBe(false)
    expect(await a.isLocked(key)).toBe(true)
    expect((await rawItem(key))?.pk?.S).toBe(key)
    expect(await a.release(key, 'a')).toBe(true)
  })

  test('precomposed and decomposed forms are distinct locks', async () => {
    const a = store()
    const base = uniqueKey()
    expect((await a.acquire(`${base}é`, 'a', 10_000)).acquired).toBe(true)
    expect((await a.acquire(`${base}e\u0301`, 'b', 10_000)).acquired).toBe(true)
  })

  test('a key over 2048 bytes of UTF-8 is rejected before any request', async () => {
    const own = client()
    const sent = recordCommands(own)
    const locks = dynamodbStore({ client: own, table: { name: table } })
    await expect(locks.acquire('é'.repeat(1025), 'a', 1000)).rejects.toBeInstanceOf(errors.E_INVALID_ARGUMENT)
    await expect(locks.isLocked('x'.repeat(2049))).rejects.toBeInstanceOf(errors.E_INVALID_ARGUMENT)
    await expect(locks.release('🔒'.repeat(513), 'a')).rejects.toBeInstanceOf(errors.E_INVALID_ARGUMENT)
    expect(sent).toEqual([])
  })
})

describe('backend failures are storage errors, never answers', () => {
  const operations = [
    ['acquire', (s: ReturnType<typeof store>, key: string) => s.acquire(key, 'a', 1000)],
    ['release', (s: ReturnType<typeof store>, key: string) => s.release(key, 'a')],
    ['extend', (s: ReturnType<typeof store>, key: string) => s.extend(key, 'a', 1000)],
    ['forceRelease', (s: ReturnType<typeof store>, key: string) => s.forceRelease(key)],
    ['isLocked', (s: ReturnType<typeof store>, key: string) => s.isLocked(key)],
  ] as const

  async function expectStorageError(run: () => Promise<unknown>, withinMs: number, { withCause = true } = {}) {
    const started = performance.now()
    const error = await run().then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    if (withCause) expect((error as errors.E_LOCK_STORAGE_ERROR).cause).toBeInstanceOf(Error)
    expect(performance.now() - started).toBeLessThan(withinMs)
    return error as errors.E_LOCK_STORAGE_ERROR
  }

  test.each(operations)('%s against a refused endpoint fails fast', async (_, run) => {
    for (const autoCreateTable of [true, false]) {
      const dead = dynamodbStore({ client: client(await refusingEndpoint()), table: { name: table }, autoCreateTable })
      await expectStorageError(() => run(dead, uniqueKey()), 3000)
    }
  })

  test.each(operations)('%s against an endpoint that never answers fails within the client timeouts', async (_, run) => {
    const silent = await silentEndpoint()
    try {
      const hanging = client(silent.endpoint, { requestTimeout: 300 })
      const dead = dynamodbStore({ client: hanging, table: { name: table }, autoCreateTable: false })
      // 2 attempts of 300 ms plus the SDK's backoff.
      await expectStorageError(() => run(dead, uniqueKey()), 3000)
    } finally {
      await silent.close()
    }
  })

  test('through Lock, a client without timeouts is still bounded by operationTimeout', async () => {
    const silent = await silentEndpoint()
    const patient = new DynamoDBClient({
      endpoint: silent.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'verrou', secretAccessKey: 'verrou' },
    })
    try {
      const factory = new LockFactory(dynamodbStore({ client: patient, table: { name: table } }), { operationTimeout: 300 })
      // Lock's own timeout error: there is no backend error to carry.
      await expectStorageError(() => factory.createLock(uniqueKey()).acquireImmediately(), 2000, { withCause: false })
    } finally {
      patient.destroy()
      await silent.close()
    }
  })

  test('a missing table (autoCreateTable off) is a storage error naming the table', async () => {
    const missing = uniqueTableName('missing')
    const locks = dynamodbStore({ client: client(), table: { name: missing }, autoCreateTable: false })
    for (const [, run] of operations) {
      const error = await expectStorageError(() => run(locks, uniqueKey()), 5000)
      expect(error.message).toContain(missing)
      expect((error.cause as Error).name).toBe('ResourceNotFoundException')
    }
  })

  test('a request DynamoDB rejects as invalid is a storage error, not "not acquired"', async () => {
    // An item over DynamoDB's 400 KB limit.
    const error = await expectStorageError(() => store().acquire(uniqueKey(), 'o'.repeat(420_000), 1000), 5000)
    expect((error.cause as Error).name).toBe('ValidationException')
  })
})

describe('options', () => {
  test.each([
    ['a table name DynamoDB would reject', { table: { name: 'no spaces allowed' } }],
    ['a too short table name', { table: { name: 'ab' } }],
    ['a missing table', { table: undefined }],
    ['a negative clock skew allowance', { clockSkewAllowance: -1 }],
    ['an infinite clock skew allowance', { clockSkewAllowance: Number.POSITIVE_INFINITY }],
  ])('%s is an invalid argument', (_, options) => {
    expect(() =>
      dynamodbStore({ client: client(), table: { name: table }, ...(options as Partial<DynamoDBStoreOptions>) }),
    ).toThrow(errors.E_INVALID_ARGUMENT)
  })

  test('a missing client is an invalid argument', () => {
    expect(() => dynamodbStore({ table: { name: table } } as unknown as DynamoDBStoreOptions)).toThrow(errors.E_INVALID_ARGUMENT)
  })
})
