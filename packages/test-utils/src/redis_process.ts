import { spawn } from 'node:child_process'
import { Redis } from 'ioredis'
import { ChildServer } from './child_server.js'
import { freePort } from './free_port.js'

/**
 * Starts `redis-server` with `argsFor(port)` on a free port and resolves once it answers there. A probed
 * port can be taken by another process before redis-server binds it (ephemeral ports are shared with
 * every outgoing connection): the server then exits, or another server answers in its place. Either way
 * it is started again on a new port, up to four times, instead of being waited for or mistaken for ours.
 * `pickPort` is for tests that need the first pick to collide.
 */
export async function startRedisProcess(
  name: string,
  argsFor: (port: number) => Promise<string[]> | string[],
  pickPort: () => Promise<number> = freePort,
): Promise<ChildServer> {
  let lastError: unknown
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = await pickPort()
    const args = await argsFor(port)
    const server = new ChildServer(name, port, () => spawn('redis-server', args, { stdio: 'pipe' }))
    try {
      await server.start(20_000)
      const pid = server.pid
      if (pid === undefined || !(await answersAs(port, pid))) {
        throw new Error(`${name}: port ${port} is answered by another process`)
      }
      return server
    } catch (error) {
      await server.kill()
      lastError = error
    }
  }
  throw lastError
}

/** Whether the redis-server answering on `port` is the process `pid`. */
async function answersAs(port: number, pid: number): Promise<boolean> {
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
    return new RegExp(`^process_id:${pid}\\r?$`, 'm').test(String(await redis.info('server')))
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}
