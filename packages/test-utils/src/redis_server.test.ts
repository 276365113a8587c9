import { Redis } from 'ioredis'
import { afterAll, expect, test } from 'vitest'
import { accepts } from './free_port.js'
import { type PrivateRedis, startPrivateRedis } from './redis_server.js'

const started: PrivateRedis[] = []
afterAll(async () => {
  await Promise.all(started.map((redis) => redis.dispose()))
})

async function start(persistent: boolean): Promise<PrivateRedis> {
  const redis = await startPrivateRedis({ persistent })
  started.push(redis)
  return redis
}

function connect(url: string): Redis {
  const connection = new Redis(url, { maxRetriesPerRequest: 0, commandTimeout: 500, retryStrategy: () => 50 })
  connection.on('error', () => {})
  return connection
}

test('a persistent private redis-server keeps its data across SIGKILL and restart on the same port', async () => {
  const redis = await start(true)
  const connection = connect(redis.url)
  try {
    await connection.set('survives', 'yes')
    await redis.server.kill()
    expect(await accepts(redis.server.port)).toBe(false)
    await redis.server.start()
    expect(await connection.get('survives')).toBe('yes')
  } finally {
    connection.disconnect()
  }
})

test('pause() freezes the server with its socket open; resume() thaws it', async () => {
  const redis = await start(false)
  const connection = connect(redis.url)
  try {
    expect(await connection.ping()).toBe('PONG')
    redis.server.pause()
    await expect(connection.ping()).rejects.toThrow(/timed out/i)
    redis.server.resume()
    await expect.poll(() => connection.ping().catch(() => 'no answer'), { timeout: 5_000 }).toBe('PONG')
  } finally {
    redis.server.resume()
    connection.disconnect()
  }
})

test('dispose() stops the server', async () => {
  const redis = await startPrivateRedis({ persistent: false })
  await redis.dispose()
  expect(await accepts(redis.server.port)).toBe(false)
})
