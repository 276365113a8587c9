import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { type LockStore, MemoryStore } from '@verrou/core'
import { mysqlConfig, postgresConfig, redisUrl, uniqueName } from '@verrou/test-utils/connection-settings'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'

export const STORE_KINDS = ['memory', 'redis', 'upstash', 'postgres', 'mysql', 'dynamodb'] as const
export type StoreKind = (typeof STORE_KINDS)[number]

/**
 * Where one store lives, as plain JSON: a worker process receives it and opens its own connection to the
 * very same locks. Every spec names a table, prefix or instance no other run uses.
 */
export type StoreSpec =
  | { kind: 'memory'; id: string }
  | { kind: 'redis'; url: string; prefix: string }
  /** `url` is the REST server (ours, in front of a real Redis; Upstash has no local server). */
  | { kind: 'upstash'; url: string; token: string; prefix: string }
  | { kind: 'postgres'; tableName: string }
  | { kind: 'mysql'; tableName: string }
  | { kind: 'dynamodb'; endpoint: string; tableName: string }

export interface OpenStore {
  store: LockStore
  /** Ends the store and the client this harness opened for it. */
  close(): Promise<void>
}

/** Memory stores are per process; specs with the same id share one within a process. */
const memoryStores = new Map<string, MemoryStore>()

/**
 * Opens `spec` with a client of its own. Drivers are imported when first needed: a worker process then
 * loads one driver, not all of them (the AWS SDK alone takes a second to load on a busy machine).
 */
export async function openStore(spec: StoreSpec): Promise<OpenStore> {
  switch (spec.kind) {
    case 'memory': {
      let store = memoryStores.get(spec.id)
      if (store === undefined) {
        store = new MemoryStore()
        memoryStores.set(spec.id, store)
      }
      return { store, close: async () => {} }
    }
    case 'redis': {
      const connection = new Redis(spec.url, { maxRetriesPerRequest: 1 })
      connection.on('error', () => {})
      const { redisStore } = await import('@verrou/redis')
      const store = redisStore({ connection, prefix: spec.prefix })
      return {
        store,
        close: async () => {
          await store.close()
          connection.disconnect()
        },
      }
    }
    case 'upstash': {
      const { Redis: UpstashRedis } = await import('@upstash/redis')
      const { upstashStore } = await import('@verrou/upstash')
      const connection = new UpstashRedis({ url: spec.url, token: spec.token, enableTelemetry: false })
      return { store: upstashStore({ connection, prefix: spec.prefix }), close: async () => {} }
    }
    case 'postgres': {
      const pool = new pg.Pool({ ...postgresConfig(), max: 4, connectionTimeoutMillis: 5000 })
      pool.on('error', () => {})
      const { postgresStore } = await import('@verrou/postgres')
      const store = postgresStore({ connection: pool, tableName: spec.tableName })
      return {
        store,
        close: async () => {
          await store.close()
          await pool.end()
        },
      }
    }
    case 'mysql': {
      const pool = mysql.createPool({ ...mysqlConfig, connectionLimit: 4 })
      const { mysqlStore } = await import('@verrou/mysql')
      const store = mysqlStore({ connection: pool, tableName: spec.tableName })
      return { store, close: () => pool.end() }
    }
    case 'dynamodb': {
      const client = await dynamodbClient(spec.endpoint)
      const { dynamodbStore } = await import('@verrou/dynamodb')
      // Every process of the suite runs on one machine, so on one clock: no skew to allow for, and short
      // leases can be taken over as soon as they end.
      const store = dynamodbStore({ client, table: { name: spec.tableName }, clockSkewAllowance: 0 })
      return { store, close: async () => client.destroy() }
    }
  }
}

export async function dynamodbClient(endpoint: string, requestTimeout = 5000): Promise<DynamoDBClient> {
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb')
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'verrou', secretAccessKey: 'verrou' },
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 1000, requestTimeout, throwOnRequestTimeout: true },
  })
}

export interface Backend {
  spec: StoreSpec
  /** Removes what the run wrote (tables, keys) and stops what it started. */
  dispose(): Promise<void>
}

/** A fresh place for locks of `kind` on the shared test servers (DynamoDB Local is started for it). */
export async function prepareBackend(kind: StoreKind): Promise<Backend> {
  switch (kind) {
    case 'memory':
      return { spec: { kind, id: uniqueName('memory') }, dispose: async () => {} }
    case 'redis': {
      const prefix = `${uniqueName('torture')}:`
      return { spec: { kind, url: redisUrl, prefix }, dispose: () => deleteRedisKeys(redisUrl, prefix) }
    }
    case 'upstash': {
      const { startUpstashRestServer } = await import('@verrou/test-utils/upstash-rest-server')
      const prefix = `${uniqueName('torture')}:`
      const server = await startUpstashRestServer({ redisUrl, token: uniqueName('token') })
      return {
        spec: { kind, url: server.url, token: server.token, prefix },
        dispose: async () => {
          await server.close()
          await deleteRedisKeys(redisUrl, prefix)
        },
      }
    }
    case 'postgres': {
      const tableName = uniqueName('torture')
      return {
        spec: { kind, tableName },
        dispose: async () => {
          const client = new pg.Client(postgresConfig())
          await client.connect()
          await client.query(
            `DROP TABLE IF EXISTS "${tableName}"; DROP SEQUENCE IF EXISTS "${tableName}_fencing_seq", "${tableName}_prune_seq"`,
          )
          await client.end()
        },
      }
    }
    case 'mysql': {
      const tableName = uniqueName('torture')
      return {
        spec: { kind, tableName },
        dispose: async () => {
          const connection = await mysql.createConnection(mysqlConfig)
          await connection.query(`DROP TABLE IF EXISTS \`${tableName}\`, \`${tableName}_floor\``)
          await connection.end()
        },
      }
    }
    case 'dynamodb': {
      const { startDynamoDBLocal } = await import('@verrou/test-utils/dynamodb-local')
      const local = await startDynamoDBLocal()
      return { spec: { kind, endpoint: local.endpoint, tableName: uniqueName('torture') }, dispose: () => local.stop() }
    }
  }
}

export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const connection = new Redis(url, { maxRetriesPerRequest: 1 })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await connection.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 500)
      cursor = next
      if (keys.length > 0) await connection.del(...keys)
    } while (cursor !== '0')
  } finally {
    connection.disconnect()
  }
}
