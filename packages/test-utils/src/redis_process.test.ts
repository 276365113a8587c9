import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterEach, expect, test } from 'vitest'
import type { ChildServer } from './child_server.js'
import { freePort } from './free_port.js'
import { startRedisProcess } from './redis_process.js'
import { commandCalls, startPrivateRedis } from './redis_server.js'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

/** Ports to pick: `first`, then free ones. */
function firstThenFree(first: number): () => Promise<number> {
  let picks = 0
  return () => (picks++ === 0 ? Promise.resolve(first) : freePort())
}

async function start(pickPort: () => Promise<number>): Promise<ChildServer> {
  const dir = await mkdtemp(join(tmpdir(), 'verrou-redis-process-test-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const server = await startRedisProcess({
    name: 'redis-server',
    dir,
    args: (port) => ['--port', String(port), '--bind', '127.0.0.1', '--save', ''],
    pickPort,
  })
  cleanups.unshift(() => server.kill())
  return server
}

/** The pid of the redis-server answering on `port`, by its own account. */
async function answeringPid(port: number): Promise<number> {
  const redis = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 })
  try {
    return Number(/^process_id:(\d+)/m.exec(await redis.info('server'))?.[1])
  } finally {
    redis.disconnect()
  }
}

/** A listener on a free port that accepts connections and never answers: not a Redis. Returns its port. */
async function squat(): Promise<number> {
  const sockets = new Set<Socket>()
  const squatter: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve))
  cleanups.push(
    () =>
      new Promise((resolve) => {
        squatter.close(resolve)
        for (const socket of sockets) socket.destroy()
      }),
  )
  return (squatter.address() as { port: number }).port
}

test('a port taken by another listener before redis-server binds it: started again on another port', async () => {
  const taken = await squat()
  const server = await start(firstThenFree(taken))
  expect(server.port).not.toBe(taken)
  expect(await answeringPid(server.port)).toBe(server.pid)
})

test('a port answered by another redis-server is not mistaken for ours', async () => {
  const other = await startPrivateRedis()
  cleanups.push(() => other.dispose())
  const server = await start(firstThenFree(other.server.port))
  expect(server.port).not.toBe(other.server.port)
  expect(await answeringPid(server.port)).toBe(server.pid)
  expect(await answeringPid(other.server.port)).toBe(other.server.pid)
})

test('gives up after four ports that all fail, with the last failure', async () => {
  const taken = await squat()
  let picks = 0
  const pickTaken = async () => {
    picks++
    return taken
  }
  await expect(start(pickTaken)).rejects.toThrow(/exited|is answered by another process/)
  expect(picks).toBe(4)
}, 60_000)

test('recognising the server sends no INFO: tests count INFO calls, and managed services rename INFO away', async () => {
  const redis = await startPrivateRedis({ args: ['--rename-command', 'INFO', 'verrou-test-info'] })
  cleanups.push(() => redis.dispose())
  const connection = redis.connect()
  try {
    expect(await commandCalls(connection, 'info', 'verrou-test-info')).toBe(0)
  } finally {
    connection.disconnect()
  }
})
