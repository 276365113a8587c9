import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { ChildServer } from './child_server.js'
import { startRedisProcess } from './redis_process.js'

export interface PrivateRedis {
  server: ChildServer
  url: string
  /** A new connection without a ready check (it sends INFO, which some tests forbid and others count). */
  connect(): Redis
  /** Stops the server and removes its data. */
  dispose(): Promise<void>
}

export interface PrivateRedisOptions {
  /**
   * Fsync every write to an append-only file, so a SIGKILL loses nothing: a restart test can then demand
   * that the locks and fencing counters held before the crash are still there. Default: no persistence.
   */
  persistent?: boolean
  /** More `redis-server` arguments, for settings the shared server must never get (an evicting policy). */
  args?: string[]
}

/** A `redis-server` of our own on a free port. */
export async function startPrivateRedis({ persistent = false, args = [] }: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'verrou-redis-'))
  const persistence = persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']
  const server = await startRedisProcess({
    name: 'redis-server',
    dir,
    args: (port) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, ...args],
  })
  const url = `redis://127.0.0.1:${server.port}`
  return {
    server,
    url,
    connect: () => new Redis(url, { maxRetriesPerRequest: 1, enableReadyCheck: false }),
    dispose: async () => {
      await server.kill()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** How many times the server ran `command` (from INFO commandstats). */
export async function commandCalls(connection: Redis, command: string, infoCommand = 'info'): Promise<number> {
  const stats = String(await connection.call(infoCommand, 'commandstats'))
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(stats)
  return match ? Number(match[1]) : 0
}
