import { Redis as UpstashRedis } from '@upstash/redis'
import type { LockStore } from '@verrou/core'
import type { Counters } from '../subject.js'
import { upstashFloorSubject } from '../subjects/floor_upstash.js'
import { verrouSubjects } from '../subjects/verrou.js'
import { type Backend, importIfPresent, NotLandedYet } from './backend.js'
import { deleteKeys, redisUrl } from './redis.js'

/** `startUpstashRestServer()` of packages/upstash/test/rest_server.ts: the REST API in front of a real Redis. */
type StartRestServer = (options: { redisUrl: string; token: string }) => Promise<{ url: string; stop(): Promise<void> }>
type UpstashStoreFactory = (options: { connection: UpstashRedis }) => LockStore

const REST_SERVER = new URL('../../../packages/upstash/test/rest_server.ts', import.meta.url)
const TOKEN = 'verrou-bench'

/** A client of its own whose every REST request is counted as a round trip. */
function countedClient(url: string, counters: Counters): UpstashRedis {
  const client = new UpstashRedis({ url, token: TOKEN, enableTelemetry: false })
  client.use((request, next) => {
    counters.roundTrips += 1
    return next(request)
  })
  return client
}

export const upstashBackend: Backend = {
  store: 'upstash',
  label: 'Upstash (local REST server)',
  async start({ runId }) {
    const driver = await importIfPresent('@verrou/upstash')
    if (typeof driver?.upstashStore !== 'function') throw new NotLandedYet('@verrou/upstash does not export upstashStore yet')
    const upstashStore = driver.upstashStore as UpstashStoreFactory
    const serverModule = await importIfPresent(REST_SERVER)
    if (typeof serverModule?.startUpstashRestServer !== 'function') {
      throw new NotLandedYet('packages/upstash/test/rest_server.ts is missing')
    }
    const server = await (serverModule.startUpstashRestServer as StartRestServer)({ redisUrl: redisUrl(), token: TOKEN })
    const connect = (counters: Counters) => countedClient(server.url, counters)
    return {
      server: `local Upstash REST server on Redis (${redisUrl()})`,
      subjects: [
        ...verrouSubjects('upstash', async (counters) => ({
          store: upstashStore({ connection: connect(counters) }),
          close: async () => {},
        })),
        upstashFloorSubject(connect),
      ],
      async stop() {
        await server.stop()
        await deleteKeys(redisUrl(), `*${runId}:upstash/*`)
      },
    }
  },
}
