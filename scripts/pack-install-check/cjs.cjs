// Run inside the fresh npm project: every package through require(), and a lock on the memory store.
const assert = require('node:assert/strict')
const core = require('@verrou/core')
const { runLockStoreConformance } = require('@verrou/core/test-suite')
const drivers = ['redis', 'postgres', 'mysql', 'dynamodb', 'upstash'].map((name) => require(`@verrou/${name}`))

assert.equal(typeof runLockStoreConformance, 'function')
for (const driver of drivers) assert.ok(Object.values(driver).some((value) => typeof value === 'function'))

async function main() {
  const factory = new core.LockFactory(core.memoryStore())
  const [ran, value] = await factory.createLock('pack-install-check:cjs').run(() => 42)
  assert.deepEqual([ran, value], [true, 42])
  // One copy of core: an error thrown through a driver's peer is the class the application imports.
  assert.equal(require.resolve('@verrou/core'), require.resolve('@verrou/core', { paths: [require.resolve('@verrou/redis')] }))
  console.log('ok memory (cjs)')
}
main().catch((error) => {
  console.error(error)
  process.exit(1)
})
