import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { closedPort } from './connections.js'
import { ping, until } from './redis_cluster.js'

export interface PrivateRedis {
  url: string
  /** A new connection to it; the caller closes it. */
  connect(): Redis
  stop(): Promise<void>
}

/**
 * A throwaway `redis-server` on a free local port, with `args` added to its command line (for settings
 * the shared server must never get, such as an evicting maxmemory-policy). No persistence.
 */
export async function startPrivateRedis(args: string[] = []): Promise<PrivateRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'verrou-redis-'))
  const port = await closedPort()
  const options = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
  const child: ChildProcess = spawn('redis-server', [...options, ...args], { stdio: 'ignore' })
  const kill = () => child.kill('SIGKILL')
  // A test run that dies must not leave a server behind.
  process.once('exit', kill)
  const stop = async () => {
    process.removeListener('exit', kill)
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      })
    }
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await until(() => ping(port), `redis-server on ${port} to start`)
  } catch (error) {
    await stop()
    throw error
  }
  const url = `redis://127.0.0.1:${port}`
  // No ready check: it sends INFO, which some tests forbid and others count.
  return { url, connect: () => new Redis(url, { maxRetriesPerRequest: 1, enableReadyCheck: false }), stop }
}

/** How many times the server ran `command` (from INFO commandstats). */
export async function commandCalls(connection: Redis, command: string, infoCommand = 'info'): Promise<number> {
  const stats = String(await connection.call(infoCommand, 'commandstats'))
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(stats)
  return match ? Number(match[1]) : 0
}
