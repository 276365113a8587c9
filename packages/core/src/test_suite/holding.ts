import assert from 'node:assert/strict'
import { E_LOCK_LOST, E_LOCK_NOT_OWNED } from '../errors.js'
import { type Suite, sleep } from './context.js'

/** Keeping a lock while work outlives its ttl, and learning at once when it is lost. */
export function holdingTests({ test, setup }: Suite): void {
  test('autoExtend keeps a 200 ms lock held through 1 s of work', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, 200)
    const [ran, aborted] = await lock.run(
      async ({ signal }) => {
        for (let i = 0; i < 5; i++) {
          await sleep(200)
          assert.equal(await otherFactory.createLock(key).acquireImmediately(), false, `still held after ${(i + 1) * 200} ms`)
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
    await assert.rejects(outcome, E_LOCK_NOT_OWNED)
    assert.ok(reason instanceof E_LOCK_LOST, `aborted with ${String(reason)}`)
  })
}
