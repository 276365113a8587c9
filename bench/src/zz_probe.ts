import { randomUUID } from 'node:crypto'
import { LockFactory } from '@verrou/core'
import { redisStore } from '@verrou/redis'
import { Redis } from 'ioredis'

const r = new Redis('redis://127.0.0.1:6379')
const store = redisStore({ connection: r })
const f1 = new LockFactory(store)
const f2 = new LockFactory(store, { operationTimeout: Number.POSITIVE_INFINITY })
let n = 0
function call<T>(run: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const c = Promise.resolve().then(run)
  const t = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error('x')), 10000)
  })
  return Promise.race([c, t]).finally(() => clearTimeout(timer))
}
const subjects: Record<string, (k: string) => Promise<void>> = {
  store: async (k) => {
    const o = randomUUID()
    await store.acquire(k, o, 10000)
    await store.release(k, o)
  },
  storeCall: async (k) => {
    const o = randomUUID()
    await call(() => store.acquire(k, o, 10000))
    await call(() => store.release(k, o))
  },
  storeTimerOnly: async (k) => {
    const o = randomUUID()
    let t = setTimeout(() => {}, 10000)
    await store.acquire(k, o, 10000)
    clearTimeout(t)
    t = setTimeout(() => {}, 10000)
    await store.release(k, o)
    clearTimeout(t)
  },
  lock: async (k) => {
    const l = f1.createLock(k, 10000)
    await l.acquire()
    await l.release()
  },
  lockNoTimeout: async (k) => {
    const l = f2.createLock(k, 10000)
    await l.acquire()
    await l.release()
  },
}
const lat: Record<string, number[]> = {}
for (const name in subjects) {
  lat[name] = []
  for (let i = 0; i < 300; i++) await subjects[name]!(`probe:${n++}`)
}
for (let round = 0; round < 40; round++) {
  for (const name in subjects) {
    for (let i = 0; i < 200; i++) {
      const t = performance.now()
      await subjects[name]!(`probe:${n++}`)
      lat[name]!.push(performance.now() - t)
    }
  }
}
for (const name in lat) {
  const s = lat[name]!.sort((a, b) => a - b)
  console.log(
    name.padEnd(16),
    'p50',
    (s[s.length >> 1]! * 1000).toFixed(1),
    'us  p90',
    (s[Math.floor(s.length * 0.9)]! * 1000).toFixed(1),
  )
}
await r.eval("for _,k in ipairs(redis.call('keys','*probe:*')) do redis.call('del',k) end", 0)
r.disconnect()
