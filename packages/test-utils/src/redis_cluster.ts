import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import type { ChildServer } from './child_server.js'
import { freePort } from './free_port.js'
import { startRedisProcess } from './redis_process.js'

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
  const servers: ChildServer[] = []
  const stop = async () => {
    await Promise.all(servers.map((server) => server.kill()))
    await rm(dir, { recursive: true, force: true })
  }

  try {
    for (let i = 0; i < 3; i++) {
      // A directory per node: it is how each node is recognised on its port (see startRedisProcess).
      const nodeDir = join(dir, `node-${i}`)
      await mkdir(nodeDir)
      servers.push(
        await startRedisProcess({
          name: 'redis-server (cluster node)',
          dir: nodeDir,
          args: async (port) => [
            '--port',
            String(port),
            // The bus port defaults to port + 10000, which may not exist for a high ephemeral port: pick one.
            '--cluster-port',
            String(await freePortOtherThan(port)),
            '--bind',
            '127.0.0.1',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(nodeDir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '5000',
            '--save',
            '',
            '--appendonly',
            'no',
          ],
        }),
      )
    }
    const nodes = servers.map((server) => ({ host: '127.0.0.1', port: server.port }))
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

/** A free port, not `port`: two probes in a row can return the same one, since each is released. */
async function freePortOtherThan(port: number): Promise<number> {
  for (;;) {
    const other = await freePort()
    if (other !== port) return other
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
