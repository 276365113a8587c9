import { spawn } from 'node:child_process'
import { realpath } from 'node:fs/promises'
import { Redis } from 'ioredis'
import { ChildServer } from './child_server.js'
import { freePort } from './free_port.js'

export interface RedisProcessOptions {
  /** Names the server in errors. */
  name: string
  /**
   * The server's working directory, its own (no other server's): passed as `--dir`, and how the server
   * is recognised on its port (`CONFIG GET dir`). Not INFO: tests count INFO calls, or rename INFO away.
   */
  dir: string
  /** The other `redis-server` arguments, for the port picked. */
  args: (port: number) => Promise<string[]> | string[]
  /** For tests that need the first pick to collide. Default: a free port. */
  pickPort?: () => Promise<number>
}

/**
 * Starts `redis-server` on a free port and resolves once it answers there. A probed port can be taken by
 * another process before redis-server binds it (ephemeral ports are shared with every outgoing
 * connection): the server then exits, or another server answers in its place. Either way it is started
 * again on a new port, up to four times, instead of being waited for or mistaken for ours.
 */
export async function startRedisProcess({ name, dir, args, pickPort = freePort }: RedisProcessOptions): Promise<ChildServer> {
  const ownDir = await realpath(dir)
  let lastError: unknown
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = await pickPort()
    const serverArgs = [...(await args(port)), '--dir', ownDir]
    const server = new ChildServer(name, port, () => spawn('redis-server', serverArgs, { stdio: 'pipe' }))
    try {
      await server.start(20_000)
      if (!(await runsIn(port, ownDir))) throw new Error(`${name}: port ${port} is answered by another process`)
      return server
    } catch (error) {
      await server.kill()
      lastError = error
    }
  }
  throw lastError
}

/** Whether the redis-server answering on `port` works in `dir`. */
async function runsIn(port: number, dir: string): Promise<boolean> {
  // Whatever answers may not speak Redis at all: never wait for it long.
  const redis = new Redis({
    port,
    host: '127.0.0.1',
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    lazyConnect: true,
    enableReadyCheck: false,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
  })
  redis.on('error', () => {})
  try {
    await redis.connect()
    const reply = await redis.config('GET', 'dir')
    return Array.isArray(reply) && reply[1] === dir
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}
