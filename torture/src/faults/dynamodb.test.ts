import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { errors, LockFactory } from '@verrou/core'
import { type DynamoDBStore, dynamodbStore } from '@verrou/dynamodb'
import { uniqueName } from '@verrou/test-utils/connection-settings'
import { type DynamoDBLocal, startDynamoDBLocal } from '@verrou/test-utils/dynamodb-local'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { dynamodbClient } from '../backends/stores.js'
import { tally } from '../tally.js'
import { installCrashGuard } from './crash_guard.js'
import { eventually, runOutage } from './outage.js'

const OPERATION_TIMEOUT = 1_000
const SLACK = 1_500
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

describe('dynamodb: a private DynamoDB Local frozen, killed and restarted under the store', () => {
  const guard = installCrashGuard()
  let local: DynamoDBLocal
  let client: DynamoDBClient
  let store: DynamoDBStore
  let factory: LockFactory

  beforeAll(async () => {
    // Its data on disk, so a restart keeps the table, the locks and their fencing counters.
    local = await startDynamoDBLocal({ persistent: true })
    client = await dynamodbClient(local.endpoint, 2_000)
    store = dynamodbStore({ client, table: { name: uniqueName('torture_faults') }, clockSkewAllowance: 0 })
    factory = new LockFactory(store, { operationTimeout: OPERATION_TIMEOUT })
    // The first operation creates the table (and waits for it to be ACTIVE): longer than the short timeout.
    await store.isLocked('warm-up')
  })

  afterAll(async () => {
    client?.destroy()
    await local?.stop()
    guard.dispose()
    expect(guard.seen).toEqual([])
  })

  test('SIGSTOP mid-operation: every call fails with a storage error within the timeout; SIGCONT: the same store works', async () => {
    await runOutage(
      factory,
      { name: 'dynamodb SIGSTOP', inflict: async () => local.server.pause(), heal: async () => local.server.resume() },
      { store: 'dynamodb', failWithin: OPERATION_TIMEOUT + SLACK, recoverWithin: 10_000 },
    )
  })

  test('SIGKILL while operations are in flight, restart on the same port: storage errors, then the same store works', async () => {
    const patient = new LockFactory(store, { operationTimeout: 10_000 })
    await runOutage(
      patient,
      {
        name: 'dynamodb SIGKILL mid-operation',
        inflict: async () => local.server.pause(),
        strike: () => local.server.kill(),
        heal: () => local.server.start(),
      },
      { store: 'dynamodb', failWithin: 10_000, failAfterStrikeWithin: 3_000, recoverWithin: 30_000 },
    )
  })

  test('process stopped (connection refused) for a while: storage errors, then the same store works', async () => {
    await runOutage(
      factory,
      { name: 'dynamodb down', inflict: () => local.server.kill(), heal: () => local.server.start() },
      { store: 'dynamodb', failWithin: OPERATION_TIMEOUT + SLACK, recoverWithin: 30_000 },
    )
  })

  test('a grant the server makes after the client stopped listening does not lock its own Lock out', async () => {
    // Frozen past the client's request timeout (2 s) on both of its attempts: the SDK gives up, and the
    // frozen server still holds the requests it was sent. Woken, it grants with nobody left to hear it.
    const lock = factory.createLock(uniqueName('unheard'), '60s')
    const observer = factory.createLock(lock.key, '60s')
    local.server.pause()
    const attempt = lock.acquireImmediately().then(
      () => expect.fail('an acquire into a frozen server should fail'),
      (error: unknown) => error,
    )
    expect(await attempt).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    await sleep(5_000)
    local.server.resume()
    tally('faultsInjected', 'dynamodb', 1, 'grant with no answer')
    // The server runs the requests its client went away from: the grant lands, owned by our Lock.
    await eventually(
      async () => {
        if (!(await observer.isLocked())) throw new Error('not granted yet')
      },
      5_000,
      'the unheard grant lands',
      true,
    )
    // Without the release the Lock sends first, its owner would be refused by its own grant for 60 s.
    expect(await lock.acquireImmediately()).toBe(true)
    expect(await observer.acquireImmediately()).toBe(false)
    await lock.release()
  })

  test('no unhandled rejection and no uncaught exception so far', () => {
    expect(guard.seen).toEqual([])
  })
})

describe('dynamodb: an in-memory DynamoDB Local restarted empty under the store', () => {
  // Found by this suite: the store used to check its table once and never again, failing for good after the
  // table vanished. It now forgets the check on ResourceNotFoundException and creates the table again.
  test('the same store object recreates its table (autoCreateTable) and works again', async () => {
    const local = await startDynamoDBLocal()
    const client = await dynamodbClient(local.endpoint, 2_000)
    try {
      const store = dynamodbStore({ client, table: { name: uniqueName('torture_restart') }, clockSkewAllowance: 0 })
      const factory = new LockFactory(store, { operationTimeout: 5_000 })
      const before = factory.createLock('survivor', '60s')
      expect(await before.acquireImmediately()).toBe(true)
      await local.server.restart()
      tally('faultsInjected', 'dynamodb', 1, 'restarted empty')
      // Everything the server kept is gone, table included: the lock is truly not held any more, so "not owned"
      // is the right answer now. What must not happen is a store that stays broken until the app restarts.
      const after = factory.createLock('survivor', '60s')
      await eventually(
        async () => {
          if (!(await after.acquireImmediately())) throw new Error('not acquired')
        },
        30_000,
        'acquire on the restarted server',
      )
      await after.release()
    } finally {
      client.destroy()
      await local.stop()
    }
  })
})
