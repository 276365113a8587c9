/**
 * Paired micro-benchmark of one uncontended acquire + release, the store alone (no `Lock` layer) against
 * the raw floor: `SET key owner NX PX ttl`, then one EVALSHA of a compare-and-delete (loaded up front).
 *
 *   pnpm exec tsx bench/uncontended.ts            (from packages/redis; REDIS_URL, default 127.0.0.1:6379)
 *   ROUNDS=5 CYCLES=3000 BLOCK=50 pnpm exec tsx bench/uncontended.ts
 *
 * Each round runs CYCLES cycles of each subject, interleaved in blocks of BLOCK: a floor block, then a
 * store block (the order flips every block, so drift and GC land on both alike). Every cycle uses a key
 * never used before, as the repository's `pnpm bench` does. The figure is the median, over all block
 * pairs, of (store block time / floor block time): on a loaded machine a pair shares its noise, so the
 * ratio holds where absolute times do not. Both subjects share one connection. Timings only, no assertions.
 */
import { createHash, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { redisStore } from '../src/store.js'

const ROUNDS = positive('ROUNDS', 5)
const CYCLES = positive('CYCLES', 3_000)
const BLOCK = positive('BLOCK', 50)
const WARM_UP = 2_000
const TTL_MS = 10_000

const COMPARE_AND_DELETE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`
const COMPARE_AND_DELETE_SHA = createHash('sha1').update(COMPARE_AND_DELETE).digest('hex')

function positive(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive whole number`)
  return value
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

async function main(): Promise<void> {
  const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 })
  const run = randomUUID().slice(0, 8)
  // Our own prefix, so the keys (and fencing counters) this run leaves are easy to find and delete.
  const prefix = `verrou-bench-${run}:`
  const store = redisStore({ connection, prefix })
  await connection.script('LOAD', COMPARE_AND_DELETE)
  let sequence = 0
  const nextKey = () => `k${sequence++}`

  const floorCycle = async (): Promise<void> => {
    const key = `${prefix}floor:${nextKey()}`
    if ((await connection.set(key, 'owner', 'PX', TTL_MS, 'NX')) !== 'OK') throw new Error('floor: not acquired')
    // As the store does: tests running against the same server may SCRIPT FLUSH at any time.
    const released = await connection
      .evalsha(COMPARE_AND_DELETE_SHA, 1, key, 'owner')
      .catch((error: Error) =>
        error.message.startsWith('NOSCRIPT') ? connection.eval(COMPARE_AND_DELETE, 1, key, 'owner') : Promise.reject(error),
      )
    if (released !== 1) throw new Error('floor: not released')
  }
  const storeCycle = async (): Promise<void> => {
    const key = nextKey()
    if (!(await store.acquire(key, 'owner', TTL_MS)).acquired) throw new Error('store: not acquired')
    if (!(await store.release(key, 'owner'))) throw new Error('store: not released')
  }
  const timeBlock = async (cycle: () => Promise<void>): Promise<number> => {
    const start = process.hrtime.bigint()
    for (let i = 0; i < BLOCK; i++) await cycle()
    return Number(process.hrtime.bigint() - start)
  }

  try {
    for (let i = 0; i < WARM_UP; i++) {
      await floorCycle()
      await storeCycle()
    }
    const all: number[] = []
    const roundMedians: number[] = []
    let floorNs = 0
    let storeNs = 0
    for (let round = 1; round <= ROUNDS; round++) {
      const ratios: number[] = []
      for (let block = 0; block < Math.ceil(CYCLES / BLOCK); block++) {
        let floor: number
        let ours: number
        if (block % 2 === 0) {
          floor = await timeBlock(floorCycle)
          ours = await timeBlock(storeCycle)
        } else {
          ours = await timeBlock(storeCycle)
          floor = await timeBlock(floorCycle)
        }
        ratios.push(ours / floor)
        floorNs += floor
        storeNs += ours
      }
      roundMedians.push(median(ratios))
      all.push(...ratios)
      console.log(`round ${round}: paired median ${median(ratios).toFixed(3)}x`)
    }
    const cycles = ROUNDS * Math.ceil(CYCLES / BLOCK) * BLOCK
    console.log(
      `store vs raw floor: paired median ${median(all).toFixed(3)}x over ${all.length} block pairs ` +
        `(round medians ${roundMedians.map((ratio) => ratio.toFixed(3)).join(' ')}); ` +
        `floor ${Math.round(cycles / (floorNs / 1e9))} cycles/s, store ${Math.round(cycles / (storeNs / 1e9))} cycles/s`,
    )
  } finally {
    await store.close()
    const stream = connection.scanStream({ match: `${prefix}*`, count: 1_000 })
    for await (const keys of stream as AsyncIterable<string[]>) if (keys.length > 0) await connection.del(...keys)
    await connection.quit()
  }
}

await main()
