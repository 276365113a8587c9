import assert from 'node:assert/strict'
import { CAPABILITIES, type CapabilityName, offers } from './capabilities.js'
import type { Suite } from './context.js'

/** The declared switches against the store: the same check runs inside every test's setup too. */
export function capabilityTests({ test, createStore, capabilities }: Suite): void {
  test('the store offers exactly the capabilities declared', async () => {
    const store = await createStore()
    for (const name of Object.keys(CAPABILITIES) as CapabilityName[]) {
      assert.equal(offers(store, name), capabilities[name], `capabilities.${name}`)
    }
  })
}

/**
 * `close()` frees what the store opened and is safe to call again: applications close from several
 * shutdown paths, and the suite itself closes every store once more at the end.
 */
export function closingTests({ test, setup, createStore, capabilities }: Suite): void {
  if (!capabilities.close) {
    test('declared without close(): the store has none', async () => {
      assert.equal((await createStore()).close, undefined)
    })
    return
  }

  test('close() can be called twice, and other stores on the same connection keep working', async () => {
    const { store, factory, key } = await setup()
    // Give the store something to free: a lock taken and released, and a subscription if it offers them.
    const lock = factory.createLock(key, '10s')
    await lock.acquire()
    const unsubscribe = await store.subscribeToReleases?.(key, () => {})
    await lock.release()
    await unsubscribe?.()
    await store.close?.()
    await store.close?.()

    const next = await createStore()
    if (next !== store) {
      const after = await next.acquire(`${key}:after-close`, 'owner', 10_000)
      assert.equal(after.acquired, true, 'a store created after another was closed still acquires')
      assert.equal(await next.release(`${key}:after-close`, 'owner'), true)
    }
  })
}
