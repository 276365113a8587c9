import { errors, type LockStore } from '@verrou/core'
import { runLockStoreConformance } from '@verrou/core/test-suite'
import { lockKeys, sharedLockKeys } from '@verrou/redis-scripts'
import { type RedisCluster, startRedisCluster } from '@verrou/test-utils/redis-cluster'
import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { closedPort, uniqueKey } from '../test/connections.js'
import { RedisStore } from './store.js'

const prefix = 'verrou-test:'
let cluster: RedisCluster
const connections: Cluster[] = []

function connectCluster(): Cluster {
  const connection = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } })
  connections.push(connection)
  return connection
}

beforeAll(async () => {
  cluster = await startRedisCluster()
})

afterAll(async () => {
  for (const connection of connections) connection.disconnect()
  await cluster?.stop()
})

describe('Redis Cluster (3 masters)', () => {
  let created = 0
  const pair: Cluster[] = []
  runLockStoreConformance({
    name: 'RedisStore on Redis Cluster',
    runner: { describe, test, afterAll },
    capabilities: { releaseNotifications: true, close: true, waitQueue: true, sharedLocks: true },
    createStore: () => {
      if (pair.length === 0) pair.push(connectCluster(), connectCluster())
      return new RedisStore({ connection: pair[created++ % 2]!, prefix })
    },
    createUnreachableStore: async () => {
      // Startup nodes that refuse connections, and no retrying: every command fails at once.
      const connection = new Cluster([{ host: '127.0.0.1', port: await closedPort() }], {
        clusterRetryStrategy: () => null,
        redisOptions: { maxRetriesPerRequest: 0 },
      })
      connection.on('error', () => {})
      connections.push(connection)
      return new RedisStore({ connection, prefix })
    },
    closeStore: (store: LockStore) => store.close?.(),
  })

  test('a lock, its counter and its queue share a slot, whatever the key; the keys spread over every master', async () => {
    const store = new RedisStore({ connection: connectCluster(), prefix })
    const node = new Redis(cluster.nodes[0]!)
    try {
      const keys = ['}leading', '\\}x', '{inner}', 'a}b', '{}', ...Array.from({ length: 30 }, (_, i) => uniqueKey(`spread-${i}`))]
      const slots = new Set<number>()
      for (const key of keys) {
        const { lock, fence, queue, queueLeases, queueInboxes } = lockKeys(prefix, key)
        const slot = Number(await node.cluster('KEYSLOT', lock))
        for (const other of [fence, queue, queueLeases, queueInboxes])
          expect(Number(await node.cluster('KEYSLOT', other))).toBe(slot)
        slots.add(slot)
        const result = await store.acquire(key, 'o', 10_000)
        expect(result.acquired).toBe(true)
        // The queue scripts touch all four keys: a cross-slot key would fail them here.
        expect(await store.acquire(key, 'w', 10_000, { lease: 5_000 })).toMatchObject({ acquired: false, position: 0 })
        // Handed to w, which gives it back by leaving: the hand-over scripts touch every key too.
        expect(await store.release(key, 'o')).toBe(true)
        expect(await store.acquire(key, 'x', 10_000)).toMatchObject({ acquired: false })
        await store.leaveQueue(key, 'w')
        expect((await store.acquire(key, 'x', 10_000)).acquired).toBe(true)
        await store.forceRelease(key)
      }
      // Each master holds a third of the 16384 slots: 30 random keys all on one master would be a fluke.
      const ranges = (await node.cluster('SLOTS')) as [number, number, ...unknown[]][]
      const mastersUsed = ranges.filter(([from, to]) => [...slots].some((slot) => slot >= from && slot <= to))
      expect(mastersUsed.length).toBe(3)
    } finally {
      node.disconnect()
      await store.close()
    }
  })

  test('semaphores and read-write locks: every shared key of a key in its slot; the queue and announcements work on every master', async () => {
    const store = new RedisStore({ connection: connectCluster(), prefix })
    const other = new RedisStore({ connection: connectCluster(), prefix })
    const node = new Redis(cluster.nodes[0]!)
    const read = { exclusive: false, limit: null }
    const write = { exclusive: true, limit: null }
    try {
      const keys = ['}leading', '{inner}', 'a}b', ...Array.from({ length: 12 }, (_, i) => uniqueKey(`shared-spread-${i}`))]
      for (const key of keys) {
        const names = Object.values(sharedLockKeys(prefix, key)).filter((name) => !name.endsWith(':released'))
        const slot = Number(await node.cluster('KEYSLOT', lockKeys(prefix, key).lock))
        for (const name of names) expect(Number(await node.cluster('KEYSLOT', name))).toBe(slot)
        const heard: string[] = []
        const unsubscribe = await other.shared.subscribeToReleases!(key, (next) => heard.push(next ?? ''))
        expect((await store.shared.acquire(key, 'r1', { exclusive: false, limit: 2 }, 10_000)).acquired).toBe(true)
        expect(await other.shared.acquire(key, 'w', write, 10_000, { lease: 5_000 })).toMatchObject({
          acquired: false,
          position: 0,
        })
        expect(await other.shared.acquire(key, 'r2', read, 10_000, { lease: 5_000 })).toMatchObject({
          acquired: false,
          position: 1,
        })
        expect(await store.shared.isLocked(key, write)).toBe(true)
        expect(await store.shared.release(key, 'r1', read)).toBe(true)
        const deadline = Date.now() + 2_000
        while (heard.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
        expect(heard).toEqual(['w'])
        expect((await other.shared.acquire(key, 'w', write, 10_000, { lease: 5_000 })).acquired).toBe(true)
        expect(await other.shared.extend(key, 'w', write, 20_000)).toBe(true)
        await store.shared.forceRelease(key, write)
        await other.shared.leaveQueue(key, 'r2')
        expect(await store.shared.isLocked(key, write)).toBe(false)
        await unsubscribe()
      }
    } finally {
      node.disconnect()
      await store.close()
      await other.close()
    }
  })

  test('masters that lost their scripts get them again by EVAL', async () => {
    const connection = connectCluster()
    const store = new RedisStore({ connection, prefix })
    const key = uniqueKey('cluster-noscript')
    await Promise.all(connection.nodes('master').map((node) => node.script('FLUSH')))
    expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
    await Promise.all(connection.nodes('master').map((node) => node.script('FLUSH')))
    expect(await store.release(key, 'o')).toBe(true)
  })

  test('every master is asked about eviction: one evicting master stops a new store until it is fixed', async () => {
    // The servers are this file's own: changing their settings touches nobody else.
    const last = new Redis(cluster.nodes[2]!)
    try {
      await last.config('SET', 'maxmemory', '100mb')
      await last.config('SET', 'maxmemory-policy', 'allkeys-lru')
      const store = new RedisStore({ connection: connectCluster(), prefix })
      const key = uniqueKey('cluster-eviction')
      const failure = await store.acquire(key, 'o', 10_000).catch((error: unknown) => error)
      expect(failure).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
      expect((failure as Error).message).toContain('maxmemory-policy allkeys-lru')
      await last.config('SET', 'maxmemory-policy', 'noeviction')
      expect((await store.acquire(key, 'o', 10_000)).acquired).toBe(true)
      expect(await store.release(key, 'o')).toBe(true)
    } finally {
      await last.config('SET', 'maxmemory-policy', 'noeviction')
      await last.config('SET', 'maxmemory', '0')
      last.disconnect()
    }
  })
})
