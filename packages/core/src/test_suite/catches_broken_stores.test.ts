import { describe, expect, test } from 'vitest'
import { MemoryStore } from '../memory_store.js'
import type { LockStore } from '../store.js'
import { FlawedQueueStore } from './broken_queue_store.js'
import * as broken from './broken_stores.js'
import type { StoreCapabilities } from './capabilities.js'
import { CONFORMANCE_GROUPS, type ConformanceOptions, runLockStoreConformance } from './index.js'

// The suite is only worth something if it fails broken drivers. Each store in broken_stores.ts has one
// classic bug; the suite runs against it through a collecting runner and must flag that bug by name.

const MEMORY: StoreCapabilities = { releaseNotifications: true, close: false, waitQueue: true, sharedLocks: true }
/** A store that announces every release but keeps no queue. */
const ANNOUNCING: StoreCapabilities = { releaseNotifications: true, close: false, waitQueue: false, sharedLocks: true }

interface Run {
  capabilities?: StoreCapabilities
  unreachable?: LockStore
}

/** Registers the suite with a runner that collects the tests, runs them and returns the failed names. */
async function failuresOf(store: LockStore, run: Run = {}): Promise<string[]> {
  const tests: { name: string; body: () => Promise<void> }[] = []
  const path: string[] = []
  const options: ConformanceOptions = {
    name: 'broken',
    createStore: () => store,
    capabilities: run.capabilities ?? MEMORY,
    createUnreachableStore: run.unreachable ? () => run.unreachable! : undefined,
    runner: {
      describe: (name, body) => {
        path.push(name)
        body()
        path.pop()
      },
      test: (name, body) => {
        tests.push({ name: [...path, name].join(' > '), body })
      },
    },
  }
  runLockStoreConformance(options)
  const failed: string[] = []
  const runAll = (selected: typeof tests) => Promise.all(selected.map(({ name, body }) => body().catch(() => failed.push(name))))
  // All at once to keep this file fast, except "closing", which closes stores and so comes last as in a runner.
  const isClosing = (name: string) => name.includes(' > closing > ')
  await runAll(tests.filter(({ name }) => !isClosing(name)))
  await runAll(tests.filter(({ name }) => isClosing(name)))
  return failed
}

describe('the conformance suite catches broken stores', () => {
  test('a correct store fails nothing', { timeout: 60_000 }, async () => {
    expect(await failuresOf(new MemoryStore())).toEqual([])
  })

  test('a correct store with its own announcements and a close() fails nothing', { timeout: 60_000 }, async () => {
    const store = Object.assign(new broken.AnnouncingStore(), { close: async () => {} })
    expect(await failuresOf(store, { capabilities: { ...ANNOUNCING, close: true } })).toEqual([])
  })

  test('a correct store that replays what a key missed before it subscribed, and says so, fails nothing', {
    timeout: 60_000,
  }, async () => {
    expect(await failuresOf(new broken.AnnouncingStore({ replaysUnheard: true }), { capabilities: ANNOUNCING })).toEqual([])
  })

  test('a correct queueing store of its own fails nothing', { timeout: 60_000 }, async () => {
    expect(await failuresOf(new FlawedQueueStore())).toEqual([])
  })

  test('a correct store that announces nothing (its waiters poll) fails nothing', { timeout: 60_000 }, async () => {
    const capabilities = { releaseNotifications: false, close: false, waitQueue: true, sharedLocks: true }
    expect(await failuresOf(broken.pollingStore(), { capabilities })).toEqual([])
  })

  test('a correct store whose shared locks are wrapped fails nothing', { timeout: 60_000 }, async () => {
    expect(await failuresOf(new broken.FlawedSharedStore({}))).toEqual([])
  })

  test('a store without shared locks passes when it declares so, and fails when it claims them', {
    timeout: 60_000,
  }, async () => {
    const store = new broken.AnnouncingStore()
    Object.defineProperty(store, 'shared', { value: undefined })
    expect(await failuresOf(store, { capabilities: { ...ANNOUNCING, sharedLocks: false } })).toEqual([])
    const failed = await failuresOf(store, { capabilities: ANNOUNCING })
    expect(failed).toContain('LockStore conformance: broken > capabilities > the store offers exactly the capabilities declared')
  })

  // Each case runs the whole suite against its own store and only asks whether one named test failed, so
  // the cases run side by side (vitest's maxConcurrency, 5 at a time): most of a case is waiting on
  // leases and timeouts. The correct stores above run alone and must fail nothing. Each asserts with its own
  // context's `expect`, as vitest asks of concurrent tests.
  test.concurrent.for<[string, () => LockStore, string, StoreCapabilities?]>([
    ['release ignores the owner', () => new broken.ReleasesForAnyOwner(), 'only the owner can release'],
    ['leases never expire', () => new broken.IgnoresTtl(), 'an expired lock belongs to nobody'],
    ['fencing tokens restart', () => new broken.RestartsTokens(), 'fencing tokens strictly increase'],
    [
      'extend revives an expired lease',
      () => new broken.RevivesExpiredLeases(),
      'the owner of an expired lock cannot release or extend it',
    ],
    ['long keys are truncated', broken.truncatesLongKeys, 'keys that share a long prefix are different locks'],
    ['long keys are hashed lossily', broken.hashesLongKeysLossily, 'keys that share a long prefix are different locks'],
    [
      'the fencing counter is forgotten after 2 s idle',
      () => new broken.ForgetsIdleCounters(2_000),
      'fencing tokens after the key sat idle > tokens keep increasing after the key sat free',
    ],
    [
      'a force release is not announced',
      () => new broken.AnnouncingStore({ silentOnForceRelease: true }),
      'release notifications > release and force release are both announced',
      ANNOUNCING,
    ],
    [
      'unsubscribe does nothing',
      () => new broken.AnnouncingStore({ unsubscribeDoesNothing: true }),
      'release notifications > a listener that unsubscribed hears nothing more',
      ANNOUNCING,
    ],
    [
      'a release wakes the waiters of every key',
      () => new broken.AnnouncingStore({ wakesEveryKey: true }),
      'release notifications > a release wakes only the subscribers of that key',
      ANNOUNCING,
    ],
    [
      'subscribeToReleases resolves 100 ms before it listens',
      () => new broken.AnnouncingStore({ activeAfterMs: 100 }),
      'release notifications > a subscription is active as soon as subscribeToReleases resolves',
      ANNOUNCING,
    ],
    [
      'heardSince reported, nothing replayed',
      () => new broken.AnnouncingStore({ claimsHeardSince: true }),
      'release notifications > a subscription that reports heardSince was passed',
      ANNOUNCING,
    ],
    [
      'expiresIn in seconds',
      () => new broken.ExpiresInWrongUnit(0.001),
      'a refused acquire tells the lease left in milliseconds',
    ],
    [
      'expiresIn in microseconds',
      () => new broken.ExpiresInWrongUnit(1000),
      'a refused acquire tells the lease left in milliseconds',
    ],
    [
      'a second close() throws',
      () => new broken.BreaksOnSecondClose(),
      'closing > close() can be called twice',
      { releaseNotifications: true, close: true, waitQueue: true, sharedLocks: true },
    ],
    [
      'a newcomer without a place barges past the queue',
      () => new FlawedQueueStore({ letsNewcomersBarge: true }),
      'wait queue > an acquire without wait neither jumps a live queue nor joins it',
    ],
    [
      'the releaser asking again barges past the queue',
      () => new FlawedQueueStore({ letsNewcomersBarge: true }),
      'wait queue > waiters get the lock in the order they joined',
    ],
    [
      'dead places are never dropped',
      () => new FlawedQueueStore({ keepsDeadPlaces: true }),
      'wait queue > a dead waiter (no renewal) delays the next by at most its place lease',
    ],
    [
      'dead places keep the key from newcomers',
      () => new FlawedQueueStore({ keepsDeadPlaces: true }),
      'wait queue > the data of a queue whose places all died is gone',
    ],
    [
      'leaveQueue does nothing',
      () => new FlawedQueueStore({ leaveDoesNothing: true }),
      'wait queue > a waiter that leaves the queue does not hold up the next',
    ],
    [
      'a Lock that times out keeps its place',
      () => new FlawedQueueStore({ leaveDoesNothing: true }),
      'wait queue > a waiter that times out leaves the queue at once',
    ],
    [
      'releases are announced to nobody',
      () => new FlawedQueueStore({ announcesToNobody: true }),
      'wait queue > release, force release and leaving announce the next waiter by name',
    ],
    [
      'releases are announced without the next owner, even when nobody waits',
      () => new FlawedQueueStore({ announcesNameless: true }),
      'wait queue > nothing is announced when nobody waits',
    ],
    [
      'a semaphore ignores its limit',
      () => new broken.FlawedSharedStore({ ignoresLimit: true }),
      'semaphores > never more than limit permits are held',
    ],
    [
      'permits and readers never expire',
      () => new broken.FlawedSharedStore({ sharedLeasesNeverEnd: true }),
      "semaphores > each permit's lease ends on the store's clock",
    ],
    [
      'readers overtake a waiting writer',
      () => new broken.FlawedSharedStore({ writersNeverQueue: true }),
      'read-write locks > once a writer waits, readers that come later wait behind it',
    ],
    [
      'forceRelease of one side frees both',
      () => new broken.FlawedSharedStore({ forceReleasesBothSides: true }),
      'read-write locks > isLocked and forceRelease act per side',
    ],
    [
      'the write side releases a reader',
      () => new broken.FlawedSharedStore({ releaseIgnoresSide: true }),
      'read-write locks > a stale reader or writer can neither release nor extend',
    ],
    [
      'shared fencing tokens restart',
      () => new broken.FlawedSharedStore({ restartsSharedTokens: true }),
      'read-write locks > fencing tokens strictly increase across permits, reads and writes',
    ],
  ])('%s', { timeout: 60_000 }, async ([, createStore, expectedFailure, capabilities], { expect }) => {
    const failed = await failuresOf(createStore(), { capabilities })
    expect(
      failed.some((name) => name.includes(expectedFailure)),
      failed.join('\n'),
    ).toBe(true)
  })

  test('backend errors reported as "not acquired"', { timeout: 60_000 }, async () => {
    const failed = await failuresOf(new MemoryStore(), { unreachable: broken.swallowsErrors })
    expect(failed.sort()).toEqual([
      expect.stringContaining('an unreachable backend is a storage error'),
      expect.stringContaining('the driver reports the backend failure itself'),
    ])
  })
})

describe('capability switches are explicit', () => {
  test('a store that announces releases but declares it does not fails every test, loudly', { timeout: 60_000 }, async () => {
    const failed = await failuresOf(new MemoryStore(), {
      capabilities: { releaseNotifications: false, close: false, waitQueue: true, sharedLocks: true },
    })
    expect(failed).toContain('LockStore conformance: broken > capabilities > the store offers exactly the capabilities declared')
    expect(failed).toContain('LockStore conformance: broken > ownership > release frees the lock for the next acquirer')
  })

  test('declaring a capability the store lacks fails too', { timeout: 60_000 }, async () => {
    const failed = await failuresOf(new MemoryStore(), {
      capabilities: { releaseNotifications: true, close: true, waitQueue: true, sharedLocks: true },
    })
    expect(failed).toContain('LockStore conformance: broken > capabilities > the store offers exactly the capabilities declared')
    expect(failed).toContain(
      'LockStore conformance: broken > closing > close() can be called twice, and other stores on the same connection keep working',
    )
  })

  test('missing, misspelt or non-boolean switches are refused when the suite is registered', () => {
    const register = (capabilities: unknown) => () =>
      runLockStoreConformance({
        name: 'bad',
        createStore: () => new MemoryStore(),
        capabilities: capabilities as StoreCapabilities,
        runner: { describe: () => {}, test: () => {} },
      })
    expect(register(undefined)).toThrow(/capabilities` is required/)
    const none = { releaseNotifications: false, close: false, waitQueue: false, sharedLocks: false }
    expect(register({ close: false, waitQueue: false, sharedLocks: false })).toThrow(
      /capabilities.releaseNotifications must be true or false/,
    )
    expect(register({ releaseNotifications: false, close: false, sharedLocks: false })).toThrow(
      /capabilities.waitQueue must be true or false/,
    )
    expect(register({ releaseNotifications: false, close: false, waitQueue: false })).toThrow(
      /capabilities.sharedLocks must be true or false/,
    )
    expect(register({ ...none, notifications: true })).toThrow(/unknown capability "notifications"/)
    expect(register({ ...none, releaseNotifications: 'no' })).toThrow(/must be true or false/)
    expect(register(none)).not.toThrow()
  })
})

class HangsOnAcquire extends MemoryStore {
  override acquire(): Promise<never> {
    return new Promise(() => {})
  }
}

test('every test is bounded by the per-test timeout, which the runner is given too', async () => {
  const timeouts: number[] = []
  let hung: (() => Promise<void>) | undefined
  runLockStoreConformance({
    name: 'hangs',
    createStore: () => new HangsOnAcquire(),
    capabilities: MEMORY,
    testTimeoutMs: 200,
    runner: {
      describe: (_name, body) => body(),
      test: (name, body, timeoutMs) => {
        timeouts.push(timeoutMs)
        if (name.startsWith('acquires a free lock')) hung = body
      },
    },
  })
  expect(new Set(timeouts).size).toBe(1)
  expect(timeouts[0]).toBeGreaterThan(200)
  await expect(hung!()).rejects.toThrow(/"acquires a free lock.*did not finish within 200 ms/)
})

test('every group is registered whatever the switches say, in the documented order', () => {
  for (const capabilities of [MEMORY, { releaseNotifications: false, close: false, waitQueue: false, sharedLocks: false }]) {
    const groups: string[] = []
    let depth = 0
    runLockStoreConformance({
      name: 'groups',
      createStore: () => new MemoryStore(),
      createUnreachableStore: () => broken.swallowsErrors,
      capabilities,
      runner: {
        describe: (name, body) => {
          if (depth === 1) groups.push(name)
          depth++
          body()
          depth--
        },
        test: () => {},
      },
    })
    expect(groups).toEqual([...CONFORMANCE_GROUPS])
    expect(groups).toContain('fencing tokens after the key sat idle')
  }
})
