import { type RedisConfigNodejs, Redis as UpstashRedis } from '@upstash/redis'
import { Redis as IORedis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { redisUrl, uniqueName } from './connection_settings.js'
import { startUpstashRestServer, type UpstashRestServer } from './upstash_rest_server.js'

const startRestServer = () => startUpstashRestServer({ redisUrl, token: uniqueName('test-token') })
const uniqueKey = (label: string) => uniqueName(`verrou-test-utils:${label}`)

/** The unmodified client, no telemetry from tests. */
function client(server: UpstashRestServer, options: Partial<RedisConfigNodejs> = {}): UpstashRedis {
  return new UpstashRedis({ url: server.url, token: server.token, enableTelemetry: false, ...options })
}

let server: UpstashRestServer
let redis: IORedis

beforeAll(async () => {
  server = await startRestServer()
  redis = new IORedis(redisUrl)
})

afterAll(async () => {
  await server?.close()
  await redis?.quit()
})

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${server.token}`, ...headers },
    body: JSON.stringify(body),
  })
}

async function json(response: Response): Promise<[number, unknown]> {
  return [response.status, await response.json()]
}

describe('the Upstash REST test server', () => {
  test('refuses a missing or wrong token with 401 and takes ?_token=', async () => {
    const key = uniqueKey('rest-auth')
    expect(await json(await fetch(server.url, { method: 'POST', body: JSON.stringify(['GET', key]) }))).toEqual([
      401,
      { error: 'Unauthorized' },
    ])
    expect((await post('/', ['GET', key], { Authorization: 'Bearer nope' })).status).toBe(401)
    const viaQuery = await fetch(`${server.url}/?_token=${server.token}`, { method: 'POST', body: JSON.stringify(['GET', key]) })
    expect(await json(viaQuery)).toEqual([200, { result: null }])
    expect((await fetch(server.url, { method: 'DELETE', headers: { Authorization: `Bearer ${server.token}` } })).status).toBe(405)
  })

  test('POST / runs one command; results are plain or base64 as asked, except a top-level OK', async () => {
    const key = uniqueKey('rest-one')
    expect(await json(await post('/', ['SET', key, 'héllo ✓', 'PX', 60_000]))).toEqual([200, { result: 'OK' }])
    expect(await json(await post('/', ['SET', key, 'héllo ✓'], { 'Upstash-Encoding': 'base64' }))).toEqual([
      200,
      { result: 'OK' },
    ])
    expect(await json(await post('/', ['GET', key]))).toEqual([200, { result: 'héllo ✓' }])
    expect(await json(await post('/', ['GET', key], { 'Upstash-Encoding': 'base64' }))).toEqual([
      200,
      { result: Buffer.from('héllo ✓').toString('base64') },
    ])
    expect(await json(await post('/', ['STRLEN', key], { 'Upstash-Encoding': 'base64' }))).toEqual([200, { result: 10 }])
    expect(await json(await post('/', ['EVAL', "return {'OK', 1, ARGV[1]}", 0, 'x'], { 'Upstash-Encoding': 'base64' }))).toEqual([
      200,
      { result: ['T0s=', 1, 'eA=='] },
    ])
    await redis.del(key)
  })

  test('binary values survive base64', async () => {
    const key = uniqueKey('rest-binary')
    const bytes = Buffer.from([0, 255, 128, 10, 13, 0xc3])
    await redis.set(key, bytes, 'PX', 60_000)
    const [, body] = await json(await post('/', ['GET', key], { 'Upstash-Encoding': 'base64' }))
    expect(Buffer.from((body as { result: string }).result, 'base64')).toEqual(bytes)
    await redis.del(key)
  })

  test('a failed command is a 400 with the Redis error', async () => {
    expect(await json(await post('/', ['GET']))).toEqual([400, { error: "ERR wrong number of arguments for 'get' command" }])
    expect(await json(await post('/', ['EVALSHA', 'ffffffffffffffffffffffffffffffffffffffff', 0]))).toEqual([
      400,
      { error: 'NOSCRIPT No matching script. Please use EVAL.' },
    ])
    expect((await post('/', { not: 'a command' })).status).toBe(400)
    expect((await post('/', ['SUBSCRIBE', 'x'])).status).toBe(400)
    expect((await post('/', ['SET', 'x', true])).status).toBe(400)
  })

  test('/pipeline answers each command, errors included, with 200', async () => {
    const key = uniqueKey('rest-pipeline')
    const response = await post('/pipeline', [
      ['SET', key, 'valuex', 'PX', 60_000],
      ['INCR', key],
      ['GET', key],
    ])
    expect(await json(response)).toEqual([
      200,
      [{ result: 'OK' }, { error: 'ERR value is not an integer or out of range' }, { result: 'valuex' }],
    ])
    await redis.del(key)
  })

  test('/multi-exec runs atomically; a transaction refused while queueing is one 400 error', async () => {
    const key = uniqueKey('rest-multi')
    expect(
      await json(
        await post('/multi-exec', [
          ['SET', key, '1', 'PX', 60_000],
          ['INCR', key],
          ['HGET', key, 'field'],
        ]),
      ),
    ).toEqual([
      200,
      [{ result: 'OK' }, { result: 2 }, { error: 'WRONGTYPE Operation against a key holding the wrong kind of value' }],
    ])
    const [status, body] = await json(
      await post('/multi-exec', [
        ['INCR', key],
        ['NOSUCHCOMMAND', key],
      ]),
    )
    expect(status).toBe(400)
    expect((body as { error: string }).error).toMatch(/^EXECABORT/)
    expect(await redis.get(key)).toBe('2')
    await redis.del(key)
  })

  test('the path form works too, for curl', async () => {
    const key = uniqueKey('rest-path')
    const headers = { Authorization: `Bearer ${server.token}` }
    expect(await json(await fetch(`${server.url}/set/${encodeURIComponent(key)}/bar?PX=60000`, { headers }))).toEqual([
      200,
      { result: 'OK' },
    ])
    expect(await json(await fetch(`${server.url}/get/${encodeURIComponent(key)}`, { headers }))).toEqual([200, { result: 'bar' }])
    expect(await redis.pttl(key)).toBeGreaterThan(0)
    await redis.del(key)
  })

  test('the unmodified @upstash/redis client cannot tell it from the service', async () => {
    for (const enableAutoPipelining of [false, true]) {
      const upstash = client(server, { enableAutoPipelining })
      const key = uniqueKey('rest-client')
      expect(await upstash.set(key, { a: 1, b: 'two' }, { px: 60_000 })).toBe('OK')
      expect(await upstash.get(key)).toEqual({ a: 1, b: 'two' })
      expect(await Promise.all([upstash.incr(`${key}:n`), upstash.incr(`${key}:n`), upstash.get(key)])).toEqual([
        1,
        2,
        { a: 1, b: 'two' },
      ])
      const pipelined = await upstash.pipeline().set(`${key}:s`, 'héllo').get(`${key}:s`).exec()
      expect(pipelined).toEqual(['OK', 'héllo'])
      const transaction = await upstash.multi().incr(`${key}:n`).get(`${key}:n`).exec()
      expect(transaction).toEqual([3, 3])
      // The client's JSON deserialisation turns a numeric-looking string into a number: why the store never reads strings back.
      expect(await upstash.eval('return ARGV[1]', [], ['42'])).toBe(42)
      await expect(upstash.incr(key)).rejects.toThrow(/ERR value is not an integer/)
      await upstash.del(key, `${key}:n`, `${key}:s`)
    }
    await expect(client(server, { token: 'wrong', retry: false }).get('x')).rejects.toThrow(/Unauthorized/)
  })

  test("subscribe: the client's event stream hears what Redis publishes (PUBLISH from a script too), until it unsubscribes", async () => {
    const upstash = client(server)
    const channel = uniqueKey('channel')
    const subscriber = upstash.subscribe<unknown>([channel])
    const heard: unknown[] = []
    subscriber.on('message', ({ message }) => heard.push(message))
    const confirmed = new Promise<number>((resolve) => subscriber.on('subscribe', resolve))
    expect(await confirmed).toBe(1)
    expect(server.openStreams()).toBe(1)
    await redis.publish(channel, 'owner-a')
    await upstash.eval("return redis.call('PUBLISH', KEYS[1], ARGV[1])", [channel], ['owner-b'])
    const deadline = performance.now() + 2_000
    while (heard.length < 2 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
    expect(heard).toEqual(['owner-a', 'owner-b'])
    await subscriber.unsubscribe()
    while (server.openStreams() > 0 && performance.now() < deadline + 2_000)
      await new Promise((resolve) => setTimeout(resolve, 5))
    expect(server.openStreams()).toBe(0)
    expect(Number(await redis.call('PUBSUB', 'NUMSUB', channel).then((reply) => (reply as unknown[])[1]))).toBe(0)
    const refused = await fetch(`${server.url}/subscribe/${channel}`, {
      method: 'POST',
      headers: { Authorization: 'Bearer wrong' },
    })
    expect(refused.status).toBe(401)
  })

  test('close() stops it', async () => {
    const other = await startRestServer()
    await other.close()
    await expect(fetch(other.url)).rejects.toThrow()
  })
})
