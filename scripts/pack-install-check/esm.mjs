// Run inside the fresh npm project: imports every package as ESM, takes and releases a lock on the memory
// store, and on Redis, PostgreSQL and MySQL when run with --real-servers.
import assert from 'node:assert/strict'
import { errors, LockFactory, memoryStore, Verrou } from '@verrou/core'
import { runLockStoreConformance } from '@verrou/core/test-suite'
import { DynamoDBStore, dynamodbStore } from '@verrou/dynamodb'
import { mysqlStore } from '@verrou/mysql'
import { postgresStore } from '@verrou/postgres'
import { redisStore } from '@verrou/redis'
import { upstashStore } from '@verrou/upstash'

for (const value of [
  dynamodbStore,
  DynamoDBStore,
  mysqlStore,
  postgresStore,
  redisStore,
  upstashStore,
  runLockStoreConformance,
]) {
  assert.equal(typeof value, 'function')
}

async function lockOnce(store, label) {
  const verrou = new Verrou({ default: 'store', stores: { store: { driver: store } } })
  const key = `pack-install-check:${label}:${process.pid}`
  const [ran, token] = await verrou.createLock(key, '5s').run(({ fencingToken }) => fencingToken)
  assert.equal(ran, true, `${label}: run`)
  assert.equal(typeof token, 'number', `${label}: fencing token`)
  const first = verrou.createLock(key, '5s')
  assert.equal(await first.acquire(), true)
  assert.equal(await verrou.createLock(key).acquireImmediately(), false, `${label}: exclusion`)
  await first.release()
  await assert.rejects(first.release(), errors.E_LOCK_NOT_OWNED)
  console.log(`ok ${label}`)
}

await lockOnce(memoryStore(), 'memory (esm)')
assert.ok(new LockFactory(memoryStore()).createLock('k') !== undefined)

if (process.argv.includes('--real-servers')) {
  const { Redis } = await import('ioredis')
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  const redisLocks = redisStore({ connection: redis })
  await lockOnce(redisLocks, 'redis')
  await redisLocks.close()
  await redis.quit()

  const { default: pg } = await import('pg')
  const pool = new pg.Pool({ host: '127.0.0.1', user: 'postgres', database: 'test', max: 2 })
  const pgLocks = postgresStore({ connection: pool, tableName: 'verrou_pack_check' })
  await lockOnce(pgLocks, 'postgres')
  await pgLocks.close?.()
  await pool.end()

  const mysql = await import('mysql2/promise')
  const mysqlPool = mysql.createPool({ host: '127.0.0.1', user: 'root', database: 'test', connectionLimit: 2 })
  const mysqlLocks = mysqlStore({ connection: mysqlPool, tableName: 'verrou_pack_check' })
  await lockOnce(mysqlLocks, 'mysql')
  await mysqlLocks.close?.()
  await mysqlPool.end()
}
