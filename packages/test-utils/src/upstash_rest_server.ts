import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'

/**
 * A local stand-in for the Upstash REST API, in front of a real Redis: Upstash has no local server, and
 * tests must run against something real. It speaks what `@upstash/redis` sends (per the REST API docs):
 *
 * - `POST /` with a JSON command array, `POST /pipeline` and `POST /multi-exec` with an array of them;
 *   also the path form (`GET /set/foo/bar`) for curl.
 * - `Authorization: Bearer <token>` (or `?_token=`); otherwise 401.
 * - `{"result": ...}` on success; `{"error": "<Redis error>"}` with 400 when the command fails; in a
 *   pipeline or transaction, one `{result}` / `{error}` per command with 200; a transaction discarded
 *   as a whole is one `{error}` with 400.
 * - `Upstash-Encoding: base64`: every string in the result base64-encoded (its raw bytes), except a
 *   top-level "OK".
 *
 * - `POST /subscribe/<channel>` (the client sends `Accept: text/event-stream`): a server-sent event
 *   stream on its own Redis connection, `data: subscribe,<channel>,<count>` once subscribed, then
 *   `data: message,<channel>,<payload>` per message, until the client goes away. This is what
 *   `redis.subscribe()` of `@upstash/redis` reads.
 *
 * All other requests share one Redis connection, so commands that would block it or change its state
 * (SUBSCRIBE as a command, MULTI, SELECT, BLPOP, ...) are refused.
 */
export interface UpstashRestServerOptions {
  /** The Redis the commands run on, e.g. `redis://127.0.0.1:6379`. */
  redisUrl: string
  /** The bearer token clients must present. */
  token: string
  /** Port on 127.0.0.1; default: a free one. */
  port?: number
}

export interface UpstashRestServer {
  /** Base URL for `new Redis({ url, token })` from `@upstash/redis`. */
  url: string
  token: string
  /** HTTP requests answered so far, by endpoint: lets tests and benchmarks count round trips. */
  requests: { command: number; pipeline: number; multiExec: number; subscribe: number }
  /** Event streams open now (one per subscribed channel of each client). */
  openStreams(): number
  /** Ends every open event stream from the server's side, as a proxy or a network drop would. */
  dropStreams(): void
  /** Stops accepting requests, drops open ones and closes the Redis connection. */
  close(): Promise<void>
}

type Command = [name: string, ...args: string[]]
type Reply = { result: unknown } | { error: string }

/** Would block the shared connection or change its state for every other request. */
const REFUSED = new Set([
  'subscribe',
  'psubscribe',
  'ssubscribe',
  'unsubscribe',
  'punsubscribe',
  'sunsubscribe',
  'monitor',
  'multi',
  'exec',
  'discard',
  'watch',
  'unwatch',
  'select',
  'swapdb',
  'quit',
  'reset',
  'hello',
  'auth',
  'client',
  'blpop',
  'brpop',
  'brpoplpush',
  'blmove',
  'blmpop',
  'bzpopmin',
  'bzpopmax',
  'bzmpop',
  'wait',
  'waitaof',
  'xread',
  'xreadgroup',
  'shutdown',
  'debug',
  'sync',
  'psync',
  'replicaof',
  'slaveof',
])

const MAX_BODY_BYTES = 10 * 1024 * 1024

class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

export async function startUpstashRestServer(options: UpstashRestServerOptions): Promise<UpstashRestServer> {
  const { redisUrl, token, port = 0 } = options
  if (typeof token !== 'string' || token.length === 0) throw new Error('startUpstashRestServer needs a non-empty token')
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  try {
    await redis.ping()
  } catch (error) {
    redis.disconnect()
    throw new Error(`The Upstash REST test server cannot reach Redis at ${redisUrl}`, { cause: error })
  }

  const requests = { command: 0, pipeline: 0, multiExec: 0, subscribe: 0 }
  /** Each open stream's Redis connection, and how to end the stream. */
  const streams = new Map<Redis, () => void>()
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname
    if (path.startsWith('/subscribe/')) {
      requests.subscribe += 1
      stream(redis, token, request, response, streams)
      return
    }
    if (path === '/pipeline') requests.pipeline += 1
    else if (path === '/multi-exec') requests.multiExec += 1
    else requests.command += 1
    handle(redis, token, request).then(
      ({ status, body }) => send(response, status, body),
      (error: unknown) => {
        if (error instanceof RequestError) send(response, error.status, { error: error.message })
        else send(response, 500, { error: `ERR ${error instanceof Error ? error.message : String(error)}` })
      },
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const address = server.address() as AddressInfo

  let closing: Promise<void> | undefined
  return {
    url: `http://127.0.0.1:${address.port}`,
    token,
    requests,
    openStreams: () => streams.size,
    dropStreams: () => {
      for (const end of [...streams.values()]) end()
    },
    close: () => {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()))
        // fetch keeps connections alive; without this close() would wait for them to idle out.
        server.closeAllConnections()
        await closed
        for (const end of [...streams.values()]) end()
        await redis.quit().catch(() => redis.disconnect())
      })()
      return closing
    },
  }
}

async function handle(redis: Redis, token: string, request: IncomingMessage): Promise<{ status: number; body: unknown }> {
  const method = request.method ?? 'GET'
  if (!['GET', 'HEAD', 'POST', 'PUT'].includes(method)) throw new RequestError(405, 'Method Not Allowed')
  const url = new URL(request.url ?? '/', 'http://localhost')
  if (!authorized(request, url, token)) throw new RequestError(401, 'Unauthorized')
  const body = await readBody(request)
  const base64 = String(request.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64'

  if (url.pathname === '/pipeline' || url.pathname === '/multi-exec') {
    const commands = parseCommandList(body)
    if (url.pathname === '/pipeline') return { status: 200, body: await runPipeline(redis, commands, base64) }
    return runTransaction(redis, commands, base64)
  }
  const command = url.pathname === '/' ? parseCommand(parseJson(body)) : pathCommand(url, body)
  const reply = await runOne(redis, command, base64)
  return { status: 'error' in reply ? 400 : 200, body: reply }
}

/**
 * One `subscribe` event stream: its own Redis connection (a subscribed connection can do nothing else),
 * ended when the client goes away. The payload is written as Redis delivered it, as the service does.
 */
function stream(
  redis: Redis,
  token: string,
  request: IncomingMessage,
  response: ServerResponse,
  streams: Map<Redis, () => void>,
): void {
  const url = new URL(request.url ?? '/', 'http://localhost')
  const channels = url.pathname.split('/').slice(2).map(decodeURIComponent)
  if (!authorized(request, url, token)) {
    send(response, 401, { error: 'Unauthorized' })
    return
  }
  if (channels.length === 0 || channels.some((channel) => channel === '')) {
    send(response, 400, { error: 'ERR wrong number of arguments for command' })
    return
  }
  const subscriber = redis.duplicate({ enableOfflineQueue: true })
  subscriber.on('error', () => {})
  const end = () => {
    if (!streams.delete(subscriber)) return
    subscriber.disconnect()
    if (!response.writableEnded) response.end()
  }
  streams.set(subscriber, end)
  request.resume()
  response.on('close', end)
  subscriber.on('end', end)
  // A message can be parsed in the same read as the SUBSCRIBE reply, before the promise below settles:
  // such messages wait for the stream's head and its subscribe events.
  let early: string[] | undefined = []
  subscriber.on('message', (channel: string, message: string) => {
    const event = `data: message,${channel},${message}\n\n`
    if (early === undefined) response.write(event)
    else early.push(event)
  })
  subscriber.subscribe(...channels).then(
    () => {
      // The client may have gone while subscribing: `end` ran and the stream is no longer ours to write.
      if (!streams.has(subscriber) || response.headersSent) return
      response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' })
      for (const [index, channel] of channels.entries()) response.write(`data: subscribe,${channel},${index + 1}\n\n`)
      for (const event of early ?? []) response.write(event)
      early = undefined
    },
    (error: unknown) => {
      const open = streams.delete(subscriber)
      subscriber.disconnect()
      if (open && !response.headersSent) send(response, 400, { error: redisError(error) })
    },
  )
}

function authorized(request: IncomingMessage, url: URL, token: string): boolean {
  const header = request.headers.authorization
  if (header !== undefined) return header === `Bearer ${token}`
  return url.searchParams.get('_token') === token
}

async function runOne(redis: Redis, [name, ...args]: Command, base64: boolean): Promise<Reply> {
  try {
    return { result: encode(await redis.callBuffer(name, ...args), base64, true) }
  } catch (error) {
    return { error: redisError(error) }
  }
}

async function runPipeline(redis: Redis, commands: Command[], base64: boolean): Promise<Reply[]> {
  const pipeline = redis.pipeline()
  for (const [name, ...args] of commands) pipeline.callBuffer(name, ...args)
  const results = (await pipeline.exec()) ?? []
  return results.map(([error, result]) => (error ? { error: redisError(error) } : { result: encode(result, base64, true) }))
}

async function runTransaction(redis: Redis, commands: Command[], base64: boolean): Promise<{ status: number; body: unknown }> {
  const transaction = redis.multi()
  for (const [name, ...args] of commands) transaction.callBuffer(name, ...args)
  try {
    const results = (await transaction.exec()) ?? []
    return {
      status: 200,
      body: results.map(([error, result]) => (error ? { error: redisError(error) } : { result: encode(result, base64, true) })),
    }
  } catch (error) {
    // EXECABORT: a command was refused while queueing, so none ran.
    return { status: 400, body: { error: redisError(error) } }
  }
}

/**
 * JSON for one Redis reply. Strings are raw bytes here (callBuffer), so base64 keeps binary intact; a
 * status "OK" at the top stays as is, as the service does (the client relies on it).
 */
function encode(reply: unknown, base64: boolean, top: boolean): unknown {
  if (reply === null || reply === undefined) return null
  if (typeof reply === 'number') return reply
  if (Buffer.isBuffer(reply) || typeof reply === 'string') {
    const bytes = Buffer.isBuffer(reply) ? reply : Buffer.from(reply)
    if (!base64 || (top && bytes.toString('latin1') === 'OK')) return bytes.toString('utf8')
    return bytes.toString('base64')
  }
  if (Array.isArray(reply)) return reply.map((item) => encode(item, base64, false))
  if (reply instanceof Error) return reply.message
  return String(reply)
}

function redisError(error: unknown): string {
  if (error instanceof Error) return error.message
  return String(error)
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body)
  } catch {
    throw new RequestError(400, 'ERR failed to parse command: the body is not JSON')
  }
}

function parseCommand(value: unknown): Command {
  if (!Array.isArray(value) || value.length === 0) {
    throw new RequestError(400, 'ERR failed to parse command: expected a non-empty JSON array')
  }
  const parts = value.map((part) => {
    if (typeof part === 'string') return part
    if (typeof part === 'number' && Number.isFinite(part)) return String(part)
    throw new RequestError(400, `ERR failed to parse command: arguments must be strings or numbers, got ${JSON.stringify(part)}`)
  })
  const [name, ...args] = parts as [string, ...string[]]
  if (REFUSED.has(name.toLowerCase())) {
    throw new RequestError(400, `ERR command '${name}' is not supported by the REST test server`)
  }
  return [name, ...args]
}

function parseCommandList(body: string): Command[] {
  const value = parseJson(body)
  if (!Array.isArray(value) || value.length === 0) {
    throw new RequestError(400, 'ERR failed to parse command list: expected a non-empty array of commands')
  }
  return value.map(parseCommand)
}

/** `/set/foo/bar?EX=100`, with a POST body as the last argument before the query ones. */
function pathCommand(url: URL, body: string): Command {
  const parts = url.pathname.split('/').slice(1).map(decodeURIComponent)
  if (body.length > 0) parts.push(body)
  for (const [name, value] of url.searchParams) if (name !== '_token') parts.push(name, value)
  return parseCommand(parts)
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new RequestError(400, 'ERR max request size exceeded')
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) })
  response.end(text)
}
