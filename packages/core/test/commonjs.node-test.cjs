// CommonJS consumers get the same API, with the same classes.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Verrou, LockFactory, Lock, errors, memoryStore, MemoryStore } = require('@verrou/core')
const { runLockStoreConformance } = require('@verrou/core/test-suite')

test('require("@verrou/core") exposes the public API', async () => {
  assert.equal(typeof runLockStoreConformance, 'function')
  const verrou = new Verrou({ default: 'memory', stores: { memory: { driver: memoryStore() } } })
  const lock = verrou.createLock('cjs', '1s')
  assert.ok(lock instanceof Lock)
  assert.ok(verrou.use('memory') instanceof LockFactory)
  assert.ok(new MemoryStore())
  assert.equal(await lock.acquire(), true)
  await lock.release()
  await assert.rejects(lock.release(), errors.E_LOCK_NOT_OWNED)
})
