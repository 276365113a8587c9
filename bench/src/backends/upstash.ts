import { Redis as UpstashRedis } from '@upstash/redis'
// The local REST API the Upstash store's own tests run on, in front of a real Redis.
import { startUpstashRestServer } from '@verrou/test-utils/upstash-rest-server'
import { upstashStore } from '@verrou/upstash'
import type { Counters, Subject } from '../subject.js'
import { upstashFloorSubject } from '../subjects/floor_upstash.js'
import { verrouSubjects } from '../subjects/verrou.js'
import { type Backend, required } from './backend.js'
import { deleteKeys, redisUrl } from './redis.js'

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

function upstashSubjects(url: string): Subject[] {
  const connect = (counters: Counters) => countedClient(url, counters)
  return [
    ...verrouSubjects('upstash', async (counters) => ({
      store: upstashStore({ connection: connect(counters) }),
      close: async () => {},
    })),
    upstashFloorSubject(connect),
  ]
}

export const upstashBackend: Backend = {
  store: 'upstash',
  label: 'Upstash (local REST server)',
  async start({ runId }) {
    const server = await startUpstashRestServer({ redisUrl: redisUrl(), token: TOKEN })
    return {
      server: `local Upstash REST server on Redis (${redisUrl()})`,
      subjects: upstashSubjects(server.url),
      // Every worker process talks to the one REST server this process started.
      shared: { url: server.url },
      async stop() {
        await server.close()
        await deleteKeys(redisUrl(), `*${runId}:upstash/*`)
      },
    }
  },
  attach: (_context, shared) => upstashSubjects(required(shared, 'url')),
}
