import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { ChildServer } from './child_server.js'
import { freePort } from './free_port.js'

const run = promisify(execFile)

export interface RedisCluster {
  nodes: { host: string; port: number }[]
  stop(): Promise<void>
}

/**
 * Starts a throwaway 3-master Redis Cluster from `redis-server` on free local ports (no persistence, its
 * files in a temp dir) and waits for cluster_state:ok. `stop()` kills the servers and removes the files.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'verrou-cluster-'))
  const processes: ChildProcess[] = []
  const killAll = () => {
    for (const child of processes) if (child.exitCode === null) child.kill('SIGKILL')
  }
  // A test run that dies must not leave servers behind.
  process.once('exit', killAll)
  const stop = async () => {
    process.removeListener('exit', killAll)
    await Promise.all(
      processes.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve()
            child.once('exit', () => resolve())
            child.kill('SIGTERM')
          }),
      ),
    )
    await rm(dir, { recursive: true, force: true })
  }

  try {
    const nodes: RedisCluster['nodes'] = []
    const taken = new Set<number>()
    for (let i = 0; i < 3; i++) {
      const server = await startNode(dir, taken)
      processes.push(server.process)
      nodes.push({ host: '127.0.0.1', port: server.port })
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((node) => `${node.host}:${node.port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ])
    for (const node of nodes) await until(() => clusterOk(node.port), `cluster_state:ok on ${node.port}`)
    return { nodes, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/**
 * One cluster node on a free port and a free bus port. A probed port can be taken by someone else before
 * redis-server binds it (or the two probes can return the same port): the server then exits at once, and
 * the node is started again on new ports instead of being waited for.
 */
async function startNode(dir: string, taken: Set<number>): Promise<{ port: number; process: ChildProcess }> {
  let lastError: unknown
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = await freePortExcept(taken)
    taken.add(port)
    // The bus port defaults to port + 10000, which may not exist for a high ephemeral port: pick one.
    const busPort = await freePortExcept(taken)
    taken.add(busPort)
    let child: ChildProcess | undefined
    const server = new ChildServer('redis-server (cluster node)', port, () => {
      child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--cluster-port',
          String(busPort),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '5000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'pipe' },
      )
      return child
    })
    try {
      await server.start(20_000)
      // Something else may have taken the port while our server failed to bind it: ask who answers.
      const pid = child?.pid
      if (pid === undefined || !(await answersAs(port, pid))) {
        await server.kill()
        throw new Error(`port ${port} is answered by another process`)
      }
      return { port, process: child as ChildProcess }
    } catch (error) {
      lastError = error
    }
  }
  throw lastError
}

async function freePortExcept(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await freePort()
    if (!taken.has(port)) return port
  }
}

/** Whether the redis-server answering on `port` is the process `pid`. */
async function answersAs(port: number, pid: number): Promise<boolean> {
  const redis = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    return new RegExp(`^process_id:${pid}\\r?$`, 'm').test(String(await redis.info('server')))
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

async function clusterOk(port: number): Promise<boolean> {
  const redis = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 })
  try {
    return String(await redis.cluster('INFO')).includes('cluster_state:ok')
  } finally {
    redis.disconnect()
  }
}

/** Polls `check` every 50 ms until it holds; fails after 20 s. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + 20_000
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
