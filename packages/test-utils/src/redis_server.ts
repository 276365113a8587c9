import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChildServer } from './child_server.js'
import { freePort } from './free_port.js'

export interface PrivateRedis {
  server: ChildServer
  url: string
  /** Stops the server and removes its data. */
  dispose(): Promise<void>
}

/**
 * A `redis-server` of our own on a free port. With `persistent`, every write is fsynced to an
 * append-only file, so a SIGKILL loses nothing: the restart test can then demand that the locks and
 * fencing counters held before the crash are still there.
 */
export async function startPrivateRedis({ persistent }: { persistent: boolean }): Promise<PrivateRedis> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'verrou-torture-redis-'))
  const persistence = persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, ...persistence]
  const server = new ChildServer('redis-server', port, () => spawn('redis-server', args, { stdio: 'pipe' }))
  await server.start()
  return {
    server,
    url: `redis://127.0.0.1:${port}`,
    dispose: async () => {
      await server.kill()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
