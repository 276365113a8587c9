import { LockFactory } from '@verrou/core'
import { redisStore } from '@verrou/redis'
import { Redis } from 'ioredis'

/** A factory on Redis with a connection of its own, as each process of the job runner would have. */
export function openRunnerFactory(url: string, prefix: string) {
  const connection = new Redis(url)
  const store = redisStore({ connection, prefix })
  const factory = new LockFactory(store, { retry: { timeout: '30s' } })
  return {
    factory,
    async close() {
      await store.close()
      await connection.quit()
    },
  }
}
