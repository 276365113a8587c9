/**
 * The CPU the `Lock` layer itself spends per uncontended acquire + release cycle.
 *
 * Both sides run against the same store, one whose every method answers with an already-resolved promise,
 * so what is left is JavaScript work: the bare side calls `store.acquire` and `store.release` directly; the
 * Lock side does `factory.createLock(key, ttl)`, `acquire()` and `release()`. Rounds of the two alternate
 * (paired, so a machine busy with other work slows both alike), and the medians are reported.
 *
 * It measures the built package (dist/, what users run), rebuilding it first when src/ is newer: run through
 * tsx, the sources would be transpiled with every closure renamed at creation, which costs more than the code.
 *
 *   pnpm exec tsx packages/core/bench/lock_cpu.ts [rounds] [cycles per round]
 *
 * LOCK_CPU_BUILD=/path/to/dist/index.js measures that build instead (say, an older commit's, for a before/after).
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { LockFactory as LockFactoryClass } from '../src/index.js'
import type { AcquireResult, LockStore } from '../src/store.js'

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const other = process.env.LOCK_CPU_BUILD
const built = other ?? join(packageDir, 'dist', 'index.js')

function newestSource(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs)
  }
  return newest
}

function builtAt(): number {
  try {
    return statSync(built).mtimeMs
  } catch {
    return 0
  }
}

if (other === undefined && builtAt() < newestSource(join(packageDir, 'src'))) {
  console.log('lock_cpu: building @verrou/core first (src/ is newer than dist/)')
  const build = spawnSync('pnpm', ['exec', 'tsup'], { cwd: packageDir, stdio: 'ignore' })
  if (build.status !== 0) throw new Error('building @verrou/core failed: run `pnpm --filter @verrou/core build`')
}
const { LockFactory } = (await import(built)) as { LockFactory: typeof LockFactoryClass }

const ROUNDS = Number(process.argv[2] ?? 31)
const CYCLES = Number(process.argv[3] ?? 20_000)
const WARMUP_ROUNDS = 5
const KEYS = 64
const TTL = 30_000

/** Answers at once, keeping only the fence counter: the cost of a store that costs nothing. */
function instantStore(): LockStore {
  let fence = 0
  const released = Promise.resolve(true)
  const done = Promise.resolve()
  return {
    acquire: () => Promise.resolve<AcquireResult>({ acquired: true, fencingToken: ++fence }),
    release: () => released,
    extend: () => released,
    forceRelease: () => done,
    isLocked: () => Promise.resolve(false),
  }
}

const keys = Array.from({ length: KEYS }, (_, i) => `bench:lock_cpu:${i}`)
const owner = 'bench-owner-0123456789abcdef0123'

async function bareRound(store: LockStore): Promise<number> {
  const start = process.hrtime.bigint()
  for (let i = 0; i < CYCLES; i++) {
    const key = keys[i % KEYS]!
    const result = await store.acquire(key, owner, TTL)
    if (!result.acquired) throw new Error('instant store refused')
    if (!(await store.release(key, owner))) throw new Error('instant store did not release')
  }
  return Number(process.hrtime.bigint() - start) / CYCLES
}

async function lockRound(factory: LockFactoryClass): Promise<number> {
  const start = process.hrtime.bigint()
  for (let i = 0; i < CYCLES; i++) {
    const lock = factory.createLock(keys[i % KEYS]!, TTL)
    if (!(await lock.acquire())) throw new Error('lock not acquired')
    await lock.release()
  }
  return Number(process.hrtime.bigint() - start) / CYCLES
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

async function main(): Promise<void> {
  const store = instantStore()
  const factory = new LockFactory(store)
  const bare: number[] = []
  const locked: number[] = []
  const diffs: number[] = []
  for (let round = 0; round < WARMUP_ROUNDS + ROUNDS; round++) {
    // Alternate which side goes first, so neither always runs on a freshly collected heap.
    const [b, l] =
      round % 2 === 0
        ? [await bareRound(store), await lockRound(factory)]
        : await lockRound(factory).then(async (l) => [await bareRound(store), l])
    if (round < WARMUP_ROUNDS) continue
    bare.push(b)
    locked.push(l)
    diffs.push(l - b)
  }
  const fmt = (ns: number) => `${ns.toFixed(0).padStart(6)} ns`
  console.log(`lock_cpu: ${ROUNDS} paired rounds of ${CYCLES} cycles (node ${process.version})`)
  console.log(`  bare store acquire+release   ${fmt(median(bare))} / cycle`)
  console.log(`  Lock create+acquire+release  ${fmt(median(locked))} / cycle`)
  console.log(`  Lock CPU per cycle           ${fmt(median(diffs))} / cycle  (median of paired differences)`)
  console.log(`  ratio Lock / bare            ${(median(locked) / median(bare)).toFixed(2)}x`)
}

await main()
