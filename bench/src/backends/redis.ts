import { redisStore } from '@verrou/redis'
import { redisUrl as configuredRedisUrl } from '@verrou/test-utils/connection-settings'
import { Redis } from 'ioredis'
import { RedisStore as V0RedisStore } from 'verrou-v0/drivers/redis'
import type { Counters, Subject } from '../subject.js'
import { redisFloorSubject } from '../subjects/floor_redis.js'
import { redisSemaphoreSemaphoreSubject, redisSemaphoreSubject } from '../subjects/redis_semaphore.js'
import { redlockSubject } from '../subjects/redlock.js'
import { verrouSubjects } from '../subjects/verrou.js'
import { verrouV0Subject } from '../subjects/verrou_v0.js'
import type { Backend } from './backend.js'

/** REDIS_URL, default the local Redis the tests use. */
export const redisUrl = (): string => configuredRedisUrl

/** A new connection whose every command is counted as a round trip. */
export function countedRedis(url: string, counters: Counters): Redis {
  const connection = new Redis(url)
  const send = connection.sendCommand.bind(connection)
  connection.sendCommand = (command, stream) => {
    counters.roundTrips += 1
    return send(command, stream)
  }
  return connection
}

/** Deletes every key matching `pattern`. */
export async function deleteKeys(url: string, pattern: string): Promise<void> {
  const admin = new Redis(url, { maxRetriesPerRequest: 1 })
  try {
    const stream = admin.scanStream({ match: pattern, count: 1000 })
    for await (const keys of stream as AsyncIterable<string[]>) if (keys.length > 0) await admin.del(...keys)
  } finally {
    admin.disconnect()
  }
}

function redisSubjects(): Subject[] {
  const url = redisUrl()
  const connect = (counters: Counters) => countedRedis(url, counters)
  return [
    // Our store with its default prefix: the keys the bench passes carry the run id.
    ...verrouSubjects('redis', async (counters) => {
      const connection = connect(counters)
      return { store: redisStore({ connection }), close: async () => void (await connection.quit()) }
    }),
    redisFloorSubject(connect),
    verrouV0Subject('redis', async (counters) => {
      const connection = connect(counters)
      return { store: new V0RedisStore({ connection }), close: async () => void (await connection.quit()) }
    }),
    redlockSubject(connect),
    redisSemaphoreSubject(connect),
    redisSemaphoreSemaphoreSubject(connect),
  ]
}

export const redisBackend: Backend = {
  store: 'redis',
  label: 'Redis',
  async start({ runId }) {
    const url = redisUrl()
    // Fails fast when the server is down, instead of queueing commands for ever.
    const admin = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true })
    admin.on('error', () => {})
    await admin.connect()
    const version = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? 'unknown version'
    return {
      server: `Redis ${version}`,
      subjects: redisSubjects(),
      shared: {},
      async stop() {
        await admin.quit()
        // Every library's keys contain the run id and subject (redis-semaphore and ours add a prefix).
        await deleteKeys(url, `*${runId}:redis/*`)
      },
    }
  },
  attach: () => redisSubjects(),
}
