/**
 * Run as a child process by the tests: waits for a lock (so the store opens its subscriber connection),
 * then quits its own connection but never calls store.close(). The process must still exit.
 */
import { LockFactory } from '@verrou/core'
import { RedisStore } from '../src/store.js'
import { connect, uniqueKey } from './connections.js'

const connection = connect()
const locks = new LockFactory(new RedisStore({ connection }))
const key = uniqueKey('forgotten-close')
const holder = locks.createLock(key, '10s')
await holder.acquire()
setTimeout(() => void holder.release(), 100)
await locks.createLock(key, '10s').run(async () => {}, { retry: { delay: '5s' } })
await connection.quit()
console.log('done')
