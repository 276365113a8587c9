// Compiled with lib ES2022 + WebWorker, no Node types and skipLibCheck off: what an edge function sees.

import { Redis } from '@upstash/redis/cloudflare'
import { LockFactory, memoryStore } from '@verrou/core'
import { upstashStore } from '@verrou/upstash'

export default {
  async fetch(_request: Request): Promise<Response> {
    const locks = new LockFactory(upstashStore({ connection: new Redis({ url: 'https://example.invalid', token: 't' }) }))
    const memory = new LockFactory(memoryStore())
    const [ran] = await memory.createLock('job').run(async () => locks.createLock('job').isLocked())
    return new Response(String(ran))
  },
}
