import assert from 'node:assert/strict'
import type { Lock } from '../lock.js'
import { type Suite, sleep } from './context.js'

export function concurrencyTests({ test, setup }: Suite): void {
  test('50 concurrent acquireImmediately on one key: exactly one wins', async () => {
    const { factory, otherFactory, key } = await setup()
    const locks: Lock[] = []
    for (let i = 0; i < 50; i++) locks.push((i % 2 ? factory : otherFactory).createLock(key, '10s'))
    const results = await Promise.all(locks.map((lock) => lock.acquireImmediately()))
    assert.equal(results.filter(Boolean).length, 1)
    await locks[results.indexOf(true)]!.release()
  })

  test('concurrent acquire after an expiry: exactly one takes it over', async () => {
    const { factory, otherFactory, key } = await setup()
    await factory.createLock(key, 100).acquire()
    await sleep(400)
    const locks = Array.from({ length: 20 }, (_, i) => (i % 2 ? factory : otherFactory).createLock(key, '10s'))
    const results = await Promise.all(locks.map((lock) => lock.acquireImmediately()))
    assert.equal(results.filter(Boolean).length, 1)
    await locks[results.indexOf(true)]!.release()
  })

  test('no lost update: many locks doing read-modify-write of a shared counter under run()', async () => {
    const { factory, otherFactory, key } = await setup()
    let counter = 0
    let inside = 0
    let maxInside = 0
    const worker = async (i: number) => {
      for (let round = 0; round < 4; round++) {
        const lock = (i % 2 ? factory : otherFactory).createLock(key, '10s')
        const [executed] = await lock.run(
          async () => {
            inside += 1
            maxInside = Math.max(maxInside, inside)
            const read = counter
            await sleep(1)
            counter = read + 1
            inside -= 1
          },
          { retry: { delay: 5, timeout: '20s' } },
        )
        assert.equal(executed, true)
      }
    }
    await Promise.all(Array.from({ length: 8 }, (_, i) => worker(i)))
    assert.equal(counter, 32)
    assert.equal(maxInside, 1, 'critical sections never overlapped')
  })

  test('releasing and acquiring race: never two holders at once', async () => {
    const { factory, otherFactory, key } = await setup()
    let holders = 0
    let maxHolders = 0
    const contender = async (i: number) => {
      for (let round = 0; round < 6; round++) {
        const lock = (i % 2 ? factory : otherFactory).createLock(key, '10s')
        if (await lock.acquireImmediately()) {
          holders += 1
          maxHolders = Math.max(maxHolders, holders)
          await sleep(0)
          holders -= 1
          await lock.release()
        }
      }
    }
    await Promise.all(Array.from({ length: 10 }, (_, i) => contender(i)))
    assert.equal(maxHolders, 1)
  })
}
