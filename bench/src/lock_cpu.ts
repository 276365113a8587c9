import { LockFactory, type LockStore } from '@verrou/core'
import { median } from './stats.js'
import { LEASE_MS } from './subject.js'

export interface LockCpuSettings {
  rounds: number
  cyclesPerBlock: number
}

export interface LockCpuResult {
  rounds: number
  cyclesPerBlock: number
  /** Median over rounds of ns per acquire + release through `Lock` (default settings) over the instant store. */
  lockNs: number
  /** Median over rounds of ns per cycle of the same store called directly. */
  bareNs: number
  /** Median over rounds of the paired difference: what `Lock` itself costs per cycle. */
  overheadNs: number
}

/**
 * A store that answers at once: every method returns an already resolved promise, every acquire succeeds
 * with the next token and every release finds its owner. Over it, a cycle costs only the caller's CPU.
 */
export function instantStore(): LockStore {
  let token = 0
  return {
    acquire: () => Promise.resolve({ acquired: true, fencingToken: ++token }),
    release: () => Promise.resolve(true),
    extend: () => Promise.resolve(true),
    forceRelease: () => Promise.resolve(),
    isLocked: () => Promise.resolve(false),
  }
}

/**
 * `Lock` over the instant store against the bare store calls, in blocks of `cyclesPerBlock` cycles that
 * alternate (which goes first swaps every round), so that a burst of load from elsewhere on the machine
 * lands on both sides of one pair. A block is timed in CPU time of this process (user + system, every thread:
 * the garbage collector's work counts), so time spent preempted by other processes on a shared machine does
 * not. Nothing in a block waits for I/O; timers are created and cleared, never fired. Medians of per-round
 * figures, and of the paired differences.
 */
export async function measureLockCpu({ rounds, cyclesPerBlock }: LockCpuSettings): Promise<LockCpuResult> {
  const store = instantStore()
  const factory = new LockFactory(store)
  let n = 0
  // Both sides build a fresh key per cycle alike; the bare side reuses one owner, as `Lock` makes its own.
  const owner = 'bench-lock-cpu-owner'
  const bareBlock = async () => {
    const start = cpuMs()
    for (let i = 0; i < cyclesPerBlock; i++) {
      const key = `lock-cpu:${n++}`
      const result = await store.acquire(key, owner, LEASE_MS)
      if (!result.acquired || !(await store.release(key, owner))) throw new Error('the instant store refused')
    }
    return cpuMs() - start
  }
  const lockBlock = async () => {
    const start = cpuMs()
    for (let i = 0; i < cyclesPerBlock; i++) {
      const lock = factory.createLock(`lock-cpu:${n++}`, LEASE_MS)
      if (!(await lock.acquire())) throw new Error('Lock did not acquire from a store that always grants')
      await lock.release()
    }
    return cpuMs() - start
  }
  // Untimed: both paths compiled by the JIT before the first timed block.
  await bareBlock()
  await lockBlock()
  const bare: number[] = []
  const lock: number[] = []
  const overhead: number[] = []
  const perCycle = (ms: number) => (ms * 1e6) / cyclesPerBlock
  for (let round = 0; round < rounds; round++) {
    let bareMs: number
    let lockMs: number
    if (round % 2 === 0) {
      bareMs = await bareBlock()
      lockMs = await lockBlock()
    } else {
      lockMs = await lockBlock()
      bareMs = await bareBlock()
    }
    bare.push(perCycle(bareMs))
    lock.push(perCycle(lockMs))
    overhead.push(perCycle(lockMs - bareMs))
  }
  return { rounds, cyclesPerBlock, lockNs: median(lock), bareNs: median(bare), overheadNs: median(overhead) }
}

/** CPU time this process has used, in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}
