import assert from 'node:assert/strict'
import { E_LOCK_LOST } from '../errors.js'
import { type Suite, sleep } from './context.js'

/** Keeping a lock while work outlives its ttl, and learning at once when it is lost. */
export function holdingTests({ test, setup }: Suite): void {
  // 500 ms, not shorter: every driver runs this, and a loaded CI machine can delay an extension by 100 ms or
  // more. Core's own tests keep a 200 ms lock through 1 s on the memory store.
  test('autoExtend keeps a 500 ms lock held through 2 s of work', async () => {
    const { factory, otherFactory, key } = await setup()
    const lock = factory.createLock(key, 500)
    const [ran, aborted] = await lock.run(
      async ({ signal }) => {
        for (let i = 0; i < 5; i++) {
          await sleep(400)
          assert.equal(await otherFactory.createLock(key).acquireImmediately(), false, `still held after ${(i + 1) * 400} ms`)
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
