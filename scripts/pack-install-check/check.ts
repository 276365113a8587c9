// Compiled with tsc --strict in the fresh npm project, under NodeNext and bundler resolution.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { Redis as UpstashRedis } from '@upstash/redis'
import { errors, type LockStore, memoryStore, Verrou } from '@verrou/core'
import { runLockStoreConformance } from '@verrou/core/test-suite'
import { dynamodbStore } from '@verrou/dynamodb'
import { mysqlStore } from '@verrou/mysql'
import { postgresStore } from '@verrou/postgres'
import { redisStore } from '@verrou/redis'
import { upstashStore } from '@verrou/upstash'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'

const stores: LockStore[] = [
  memoryStore(),
  redisStore({ connection: new Redis({ lazyConnect: true }) }),
  postgresStore({ connection: new pg.Pool() }),
  mysqlStore({ connection: mysql.createPool({}) }),
  dynamodbStore({ client: new DynamoDBClient({}), table: { name: 'locks' } }),
  upstashStore({ connection: new UpstashRedis({ url: 'http://127.0.0.1', token: 't' }) }),
]
const verrou = new Verrou({ default: 'memory', stores: { memory: { driver: stores[0]! } } })
export async function work(): Promise<number> {
  const [ran, token] = await verrou.createLock('k').run(({ fencingToken }) => fencingToken)
  if (!ran) throw new errors.E_LOCK_STORAGE_ERROR('not run')
  return token ?? 0
}
export const suite: typeof runLockStoreConformance = runLockStoreConformance
