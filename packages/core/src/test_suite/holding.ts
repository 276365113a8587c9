import assert from 'node:assert/strict'
import { E_LOCK_LOST } from '../errors.js'
import { type Suite, sleep } from './context.js'

/** Keeping a lock while work outlives its ttl, and learning at once when it is lost. */
export function holdingTests({ test, setup }: Suite): void {
  // 1 s, not shorter: every driver runs this, and on a loaded two-core CI machine an extension (sent at
  // half the lease) was seen to land more than 250 ms late on MariaDB. Core's own tests keep a 200 ms lock
  // through 1 s on the memory store.
  test('autoExtend keeps a 1 s lock held through 2.5 s of work', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, 1_000)
    const [ran, aborted] = await lock.run(
      async ({ signal }) => {
        for (let i = 0; i < 5; i++) {
          await sleep(500)
          assert.equal(await otherFactory.createLock(key).acquireImmediately(), false, `still held after ${(i + 1) * 500} ms`)
        }
        return signal.aborted
      },
      { autoExtend: true },
    )
    assert.equal(ran, true)
    assert.equal(aborted, false)
    assert.equal(await lock.isLocked(), false, 'released at the end')
  })

  test('a lock taken away while held aborts the signal with E_LOCK_LOST', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, 300)
    let reason: unknown
    const outcome = lock.run(
      async ({ signal }) => {
        await otherFactory.createLock(key).forceRelease()
        // Bounded, so a store whose extend revives the lease fails here instead of hanging.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 3_000)
          const onAbort = () => {
            clearTimeout(timer)
            resolve()
          }
          signal.addEventListener('abort', onAbort, { once: true })
        })
        reason = signal.reason
      },
      { autoExtend: true },
    )
    await assert.rejects(outcome, (error) => error === reason)
    assert.ok(reason instanceof E_LOCK_LOST, `aborted with ${String(reason)}`)
  })
}
