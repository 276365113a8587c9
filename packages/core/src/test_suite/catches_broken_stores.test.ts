import { describe, expect, test } from 'vitest'
import { MemoryStore } from '../memory_store.js'
import type { AcquireResult, LockStore } from '../store.js'
import { runLockStoreConformance } from './index.js'

// The suite is only worth something if it fails broken drivers. Each store below has one classic bug;
// the suite runs against it through a collecting runner and must flag that bug by name.

class ReleasesForAnyOwner extends MemoryStore {
  override async release(key: string): Promise<boolean> {
    const held = await this.isLocked(key)
    await this.forceRelease(key)
    return held
  }
}

class IgnoresTtl extends MemoryStore {
  override acquire(key: string, owner: string): Promise<AcquireResult> {
    return super.acquire(key, owner, null)
  }
}

class RestartsTokens extends MemoryStore {
  override async acquire(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    const result = await super.acquire(key, owner, ttl)
    return result.acquired ? { acquired: true, fencingToken: 1 } : result
  }
}

class RevivesExpiredLeases extends MemoryStore {
  readonly #owners = new Map<string, string>()
  override async acquire(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    const result = await super.acquire(key, owner, ttl)
    if (result.acquired) this.#owners.set(key, owner)
    return result
  }
  override async extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    if (await super.extend(key, owner, ttl)) return true
    if (this.#owners.get(key) !== owner) return false
    // The bug: re-creating a lease the owner no longer has.
    await super.acquire(key, owner, ttl)
    return true
  }
}

/** Reports an unreachable backend as "not acquired" / "not owned". */
const swallowsErrors: LockStore = {
  acquire: async () => ({ acquired: false }),
  release: async () => false,
  extend: async () => false,
  forceRelease: async () => {},
  isLocked: async () => false,
}

async function failuresOf(store: LockStore, unreachable?: LockStore): Promise<string[]> {
  const tests: { name: string; body: () => Promise<void> }[] = []
  const path: string[] = []
  runLockStoreConformance({
    name: 'broken',
    createStore: () => store,
    createUnreachableStore: unreachable ? () => unreachable : undefined,
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
  })
  const failed: string[] = []
  await Promise.all(
    tests.map(async ({ name, body }) => {
      await body().catch(() => failed.push(name))
    }),
  )
  return failed
}

describe('the conformance suite catches broken stores', () => {
  test('a correct store fails nothing', { timeout: 60_000 }, async () => {
    expect(await failuresOf(new MemoryStore())).toEqual([])
  })

  test.each([
    ['release ignores the owner', () => new ReleasesForAnyOwner(), 'only the owner can release'],
    ['leases never expire', () => new IgnoresTtl(), 'an expired lock belongs to nobody'],
    ['fencing tokens restart', () => new RestartsTokens(), 'fencing tokens strictly increase'],
    [
      'extend revives an expired lease',
      () => new RevivesExpiredLeases(),
      'the owner of an expired lock cannot release or extend it',
    ],
  ])('%s', { timeout: 60_000 }, async (_bug, createStore, expectedFailure) => {
    const failed = await failuresOf(createStore())
    expect(
      failed.some((name) => name.includes(expectedFailure)),
      failed.join('\n'),
    ).toBe(true)
  })

  test('backend errors reported as "not acquired"', { timeout: 60_000 }, async () => {
    const failed = await failuresOf(new MemoryStore(), swallowsErrors)
    expect(failed.sort()).toEqual([
      expect.stringContaining('an unreachable backend is a storage error'),
      expect.stringContaining('the driver reports the backend failure itself'),
    ])
  })
})
