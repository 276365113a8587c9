import { DeleteItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb'
import type { LockStore } from '@verrou/core'
import { type DynamoDBStore, dynamodbStore } from '@verrou/dynamodb'
import { type MysqlStore, mysqlStore } from '@verrou/mysql'
import { type PostgresStore, postgresStore } from '@verrou/postgres'
import { mysqlConfig, postgresConfig } from '@verrou/test-utils/connection-settings'
import mysql, { type Pool as MysqlPool, type RowDataPacket } from 'mysql2/promise'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type Backend, dynamodbClient, prepareBackend } from '../backends/stores.js'
import { scanItems } from './dynamodb_items.js'
import { allowedRows, lockEachKeyOnce, sampleWhile, waitForCount } from './lock_many_keys.js'

/**
 * What a backend keeps must stay bounded by the keys in use plus a bounded grace, while fencing tokens
 * never go backwards. An application that locks `invoice:${id}` uses each key once: 100,000 such keys are
 * locked and released here, and the table is measured while that runs and once the grace has passed.
 */
const SQL_KEYS = 100_000
const CONCURRENCY = 16
/** Postgres' `pruneAfter`: how long an ended row is kept (short here; the default is 10 minutes). */
const GRACE_MS = 1_000
/** Both SQL stores' `pruneInterval`: the pause between background housekeeping runs. */
const INTERVAL_MS = 500
/** Room for housekeeping to catch up on a loaded machine: how far behind the releases deletion may lag. */
const DRAIN_SLACK_MS = 15_000
/** 100,000 keys take well under a minute per store on an idle machine, several on a loaded one. */
const SQL_TIMEOUT_MS = 20 * 60_000
/** Every `SAMPLE_EVERY`-th key's token is kept, to check it again once its row is gone. */
const SAMPLE_EVERY = 1_000
/**
 * DynamoDB Local answers a few hundred requests a second at best (about 35 acquire-and-release cycles a
 * second on two busy cores), so 100,000 keys would take most of an hour: 2,000 keep the case near a
 * minute, and the bound it checks is per item, so it does not depend on the count.
 */
const DYNAMODB_KEYS = 2_000
/** What the DynamoDB README documents: an item may be deleted by TTL one hour after its lease ended. */
const DYNAMODB_RETENTION_MS = 60 * 60_000

/** Two locks that stay held throughout: one with a lease, one without expiry. Housekeeping must keep both. */
async function takeSentinels(store: LockStore): Promise<void> {
  expect((await store.acquire('sentinel:lease', 'keeper', 10 * 60_000)).acquired).toBe(true)
  expect((await store.acquire('sentinel:forever', 'keeper', null)).acquired).toBe(true)
}

async function expectSentinelsHeld(store: LockStore): Promise<void> {
  expect(await store.extend('sentinel:lease', 'keeper', 10 * 60_000)).toBe(true)
  expect(await store.extend('sentinel:forever', 'keeper', null)).toBe(true)
  expect((await store.acquire('sentinel:lease', 'rival', 1_000)).acquired).toBe(false)
}

/** A key whose row is gone must start above every token it had: take each sampled key again. */
async function expectTokensAboveSamples(store: LockStore, sampled: Map<string, number>): Promise<void> {
  for (const [key, before] of sampled) {
    const again = await store.acquire(key, 'later', 60_000)
    expect(again.acquired && again.fencingToken > before, `${key}: token after pruning above ${before}`).toBe(true)
    await store.release(key, 'later')
  }
}

/**
 * The shared part of both SQL cases: lock every key once while sampling the row count, check every sample
 * against the bound, then wait for the table to come down to the two sentinels.
 */
async function proveSqlFootprint(store: LockStore, rowCount: () => Promise<number>, label: string): Promise<void> {
  await takeSentinels(store)
  const sampler = sampleWhile(rowCount, 250)
  let run: Awaited<ReturnType<typeof lockEachKeyOnce>>
  let rowsAtEnd: number
  try {
    run = await lockEachKeyOnce(store, {
      keyOf: (index) => `invoice:${index}`,
      count: SQL_KEYS,
      concurrency: CONCURRENCY,
      sampleEvery: SAMPLE_EVERY,
    })
    rowsAtEnd = await rowCount()
  } finally {
    await sampler.stop()
  }
  const windowMs = GRACE_MS + INTERVAL_MS + DRAIN_SLACK_MS
  const peak = Math.max(...sampler.samples.map((sample) => sample.rows))
  for (const sample of sampler.samples) {
    expect(sample.rows, `rows counted between ${sample.sentAt} and ${sample.answeredAt}`).toBeLessThanOrEqual(
      allowedRows(run.releasedAt, sample, windowMs, 2, CONCURRENCY),
    )
  }
  const settledStarted = performance.now()
  const settled = await waitForCount(rowCount, 2, GRACE_MS + INTERVAL_MS + DRAIN_SLACK_MS)
  const settledMs = performance.now() - settledStarted
  console.log(
    `${label}: ${SQL_KEYS} keys locked once in ${Math.round(run.elapsedMs)} ms; rows: peak ${peak} while locking, ${rowsAtEnd} at the end, ${settled} after ${Math.round(settledMs)} ms more`,
  )
  expect(settled).toBe(2)
  await expectSentinelsHeld(store)
  await expectTokensAboveSamples(store, run.sampledTokens)
}

describe('footprint: 100,000 distinct keys locked once each', () => {
  describe('postgres', () => {
    let backend: Backend
    let pool: pg.Pool
    let store: PostgresStore

    beforeAll(async () => {
      backend = await prepareBackend('postgres')
      if (backend.spec.kind !== 'postgres') throw new Error('unexpected backend')
      pool = new pg.Pool({ ...postgresConfig(), max: 10, connectionTimeoutMillis: 5000 })
      pool.on('error', () => {})
      store = postgresStore({
        connection: pool,
        tableName: backend.spec.tableName,
        pruneAfter: GRACE_MS,
        pruneInterval: INTERVAL_MS,
        listen: false,
      })
    })

    afterAll(async () => {
      await store?.close()
      await pool?.end()
      await backend?.dispose()
    })

    test(
      'the table comes down to the keys in use once the grace has passed; two sequences; tokens keep growing',
      async () => {
        if (backend.spec.kind !== 'postgres') throw new Error('unexpected backend')
        const table = backend.spec.tableName
        const rowCount = async () => (await pool.query(`SELECT count(*)::int AS n FROM "${table}"`)).rows[0].n as number
        await proveSqlFootprint(store, rowCount, 'postgres')
        // The counter is one sequence per table, and the prune mark another, whatever the number of keys.
        const { rows } = await pool.query(
          "SELECT relname FROM pg_class WHERE relkind = 'S' AND relname LIKE $1 ORDER BY relname",
          [`${table}%`],
        )
        expect(rows.map((row) => row.relname)).toEqual([`${table}_fencing_seq`, `${table}_prune_seq`])
      },
      SQL_TIMEOUT_MS,
    )
  })

  describe('mysql', () => {
    let backend: Backend
    let pool: MysqlPool
    let store: MysqlStore

    beforeAll(async () => {
      backend = await prepareBackend('mysql')
      if (backend.spec.kind !== 'mysql') throw new Error('unexpected backend')
      pool = mysql.createPool({ ...mysqlConfig, connectionLimit: 10 })
      store = mysqlStore({ connection: pool, tableName: backend.spec.tableName, pruneInterval: INTERVAL_MS })
    })

    afterAll(async () => {
      await store?.close()
      await pool?.end()
      await backend?.dispose()
    })

    test(
      'the table comes down to the keys in use once housekeeping ran; one floor row; tokens keep growing',
      async () => {
        if (backend.spec.kind !== 'mysql') throw new Error('unexpected backend')
        const table = backend.spec.tableName
        const count = async (name: string) =>
          Number((await pool.query<RowDataPacket[]>(`SELECT count(*) AS n FROM \`${name}\``))[0][0]!.n)
        await proveSqlFootprint(store, () => count(table), 'mysql')
        expect(await count(`${table}_floor`)).toBe(1)
      },
      SQL_TIMEOUT_MS,
    )
  })

  describe('dynamodb', () => {
    let backend: Backend
    let client: DynamoDBClient
    let store: DynamoDBStore

    beforeAll(async () => {
      backend = await prepareBackend('dynamodb')
      if (backend.spec.kind !== 'dynamodb') throw new Error('unexpected backend')
      client = await dynamodbClient(backend.spec.endpoint)
      store = dynamodbStore({ client, table: { name: backend.spec.tableName }, clockSkewAllowance: 0 })
    })

    afterAll(async () => {
      client?.destroy()
      await backend?.dispose()
    })

    test(
      `${DYNAMODB_KEYS} keys: every item not in use carries a TTL at most an hour past its release, and a counter deleted by TTL resumes above`,
      async () => {
        if (backend.spec.kind !== 'dynamodb') throw new Error('unexpected backend')
        const table = backend.spec.tableName
        await takeSentinels(store)
        const started = Date.now()
        const run = await lockEachKeyOnce(store, {
          keyOf: (index) => `invoice:${index}`,
          count: DYNAMODB_KEYS,
          concurrency: CONCURRENCY,
          sampleEvery: 100,
        })
        const finished = Date.now()
        console.log(`dynamodb: ${DYNAMODB_KEYS} keys locked once in ${Math.round(run.elapsedMs)} ms`)

        // DynamoDB Local does not delete expired items (none went in a minute of watching), so the bound is
        // read from the TTL attribute: one item per key, and each released one marked for deletion.
        const items = await scanItems(client, table)
        expect(items.size).toBe(DYNAMODB_KEYS + 2)
        for (const [key, item] of items) {
          if (key.startsWith('sentinel:')) continue
          expect(item.owner, key).toBeUndefined()
          const ttlMs = Number(item.ttl?.N) * 1000
          expect(ttlMs, key).toBeGreaterThanOrEqual(started + DYNAMODB_RETENTION_MS - 1000)
          expect(ttlMs, key).toBeLessThanOrEqual(finished + DYNAMODB_RETENTION_MS + 1000)
        }
        // Held locks are in use: the lease's TTL lies past its end, and a lease without expiry has none.
        expect(Number(items.get('sentinel:lease')?.ttl?.N) * 1000).toBeGreaterThan(started + 10 * 60_000)
        expect(items.get('sentinel:forever')?.ttl).toBeUndefined()
        await expectSentinelsHeld(store)

        // What TTL would do: delete the sampled items. Their counters restart from the clock floor, above.
        for (const key of run.sampledTokens.keys()) {
          await client.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: key } } }))
        }
        await expectTokensAboveSamples(store, run.sampledTokens)
      },
      10 * 60_000,
    )
  })
})
