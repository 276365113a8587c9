import { describe, expect, test } from 'vitest'
import { LockFactory } from './lock_factory.js'
import { MemoryStore } from './memory_store.js'
import { SUBSCRIPTION_LINGER_MS } from './release_queue.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

describe('memory store', () => {
  test('expired leases are reclaimed, so memory does not grow with every key used', async () => {
    const store = new MemoryStore()
    const factory = new LockFactory(store)
    for (let i = 0; i < 1000; i++) await factory.createLock(`key-${i}`, 50).acquire()
    expect(store.size).toBe(1000)
    await sleep(120)
    expect(store.size).toBe(0)
  })

  test('released keys leave nothing behind', async () => {
    const store = new MemoryStore()
    const lock = new LockFactory(store).createLock('k', null)
    await lock.acquire()
    await lock.release()
    expect(store.size).toBe(0)
  })

  // Verrou 0.5.2 let two holders in when acquireImmediately raced a release.
  test('acquireImmediately racing a release never lets two holders in', async () => {
    const store = new MemoryStore()
    const factory = new LockFactory(store)
    let holders = 0
    let overlaps = 0
    const contender = async () => {
      for (let round = 0; round < 200; round++) {
        const lock = factory.createLock('hot', '10s')
        if (await lock.acquireImmediately()) {
          holders += 1
          if (holders > 1) overlaps += 1
          await Promise.resolve()
          holders -= 1
          await lock.release()
        }
      }
    }
    await Promise.all(Array.from({ length: 20 }, contender))
    expect(overlaps).toBe(0)
  })

  // Verrou 0.5.2 let a stale owner release the next holder's lock.
  test('a stale owner cannot release the lock of the next holder', async () => {
    const factory = new LockFactory(new MemoryStore())
    const stale = factory.createLock('k', 50)
    await stale.acquire()
    await sleep(80)
    const next = factory.createLock('k', '10s')
    expect(await next.acquireImmediately()).toBe(true)
    await expect(stale.release()).rejects.toThrow(/not held by this owner/)
    expect(await next.isLocked()).toBe(true)
  })

  // Verrou 0.5.2 returned true for attempts: 0 without acquiring.
  test('attempts: 0 is rejected, not reported as acquired', async () => {
    const lock = new LockFactory(new MemoryStore()).createLock('k')
    await expect(lock.acquire({ retry: { attempts: 0 } })).rejects.toThrow(/attempts/)
    expect(await lock.isLocked()).toBe(false)
  })

  test('timers do not keep the process alive', async () => {
    const { spawnSync } = await import('node:child_process')
    const script = `
      import { LockFactory, MemoryStore } from '@verrou/core'
      const lock = new LockFactory(new MemoryStore()).createLock('k', '1h')
      await lock.run(async () => {}, { autoExtend: true })
      await lock.acquire()
      const held = new LockFactory(new MemoryStore()).createLock('held', '1h')
      await held.acquire()
      held.keepAlive()
    `
    const started = performance.now()
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: import.meta.dirname,
      timeout: 10_000,
    })
    expect(child.stderr.toString()).toBe('')
    expect(child.status).toBe(0)
    expect(performance.now() - started).toBeLessThan(5_000)
  })
})

describe('memory store leases longer than a timer can wait', () => {
  test('a lease of 2^31 ms or more stays held (setTimeout caps at 2^31-1)', async () => {
    const store = new MemoryStore()
    const factory = new LockFactory(store)
    const locks = ['30d', 2 ** 31, 2 ** 40].map((ttl, i) => factory.createLock(`long-${i}`, ttl))
    for (const lock of locks) expect(await lock.acquire()).toBe(true)
    await sleep(50)
    for (const lock of locks) expect(await lock.isLocked()).toBe(true)
  })
})

describe('memory store footprint', () => {
  test('10,000 keys locked once leave nothing behind, and tokens still never go backwards', async () => {
    const store = new MemoryStore()
    const factory = new LockFactory(store)
    let highest = 0
    for (let i = 0; i < 10_000; i++) {
      const lock = factory.createLock(`invoice:${i}`, i % 2 ? 30 : '10s')
      await lock.acquire()
      highest = Math.max(highest, lock.fencingToken!)
      // Half are released, half left to expire.
      if (i % 2 === 0) await lock.release()
    }
    // A waiter's subscription outlives it only by the linger a quick return to the key would reuse.
    const held = factory.createLock('invoice:0', '10s')
    await held.acquire()
    await factory.createLock('invoice:0').acquire({ retry: { timeout: 20 } })
    await held.release()
    await sleep(SUBSCRIPTION_LINGER_MS + 80)
    expect(store.size).toBe(0)
    expect(store.footprint).toBe(0)
    const again = factory.createLock('invoice:1', '10s')
    await again.acquire()
    expect(again.fencingToken).toBeGreaterThan(highest)
    expect(store.footprint).toBe(1)
    await again.release()
  })

  test('queue data counts in the footprint and is gone once its places died', async () => {
    const store = new MemoryStore()
    await store.acquire('busy', 'holder', 10_000)
    for (let i = 0; i < 100; i++) await store.acquire(`queued:${i}`, 'holder', 10_000)
    for (let i = 0; i < 100; i++) await store.acquire(`queued:${i}`, `waiter:${i}`, 10_000, { lease: 50 })
    await store.acquire('busy', 'waiter', 10_000, { lease: 50 })
    for (let i = 0; i < 100; i++) await store.release(`queued:${i}`, 'holder')
    // The released keys have no lease left, only a queue: still counted.
    expect(store.size).toBe(1)
    expect(store.footprint).toBe(101)
    await sleep(120)
    expect(store.footprint).toBe(1)
    await store.release('busy', 'holder')
    expect(store.footprint).toBe(0)
  })

  test('the head dying while the lock is free announces the next waiter by name', async () => {
    const store = new MemoryStore()
    const heard: (string | undefined)[] = []
    const unsubscribe = await store.subscribeToReleases('k', (next) => heard.push(next))
    await store.acquire('k', 'holder', 10_000)
    await store.acquire('k', 'dies', 10_000, { lease: 40 })
    await store.acquire('k', 'next', 10_000, { lease: 10_000 })
    await store.release('k', 'holder')
    expect(heard).toEqual(['dies'])
    await sleep(100)
    expect(heard).toEqual(['dies', 'next'])
    expect(await store.acquire('k', 'next', 10_000)).toMatchObject({ acquired: true })
    await unsubscribe()
    await store.release('k', 'next')
    expect(store.footprint).toBe(0)
  })
})
