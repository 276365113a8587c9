import { type LockFactory, memoryStore, Verrou } from '@verrou/core'

export interface Interval {
  worker: string
  fencingToken: number
  start: number
  end: number
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Several workers take turns on one lock. Each records when it held the lock, so the caller can check
 * that no two critical sections overlapped.
 */
export async function contend(
  factory: LockFactory,
  { workers = 4, rounds = 3, holdMs = 40, log = (_line: string) => {} } = {},
): Promise<Interval[]> {
  const intervals: Interval[] = []
  const startedAt = performance.now()
  const at = () => `${String(Math.round(performance.now() - startedAt)).padStart(4)} ms`

  const worker = async (name: string) => {
    for (let round = 1; round <= rounds; round++) {
      const lock = factory.createLock('invoice:42', '5s')
      log(`${at()}  ${name} wants the lock`)
      await lock.run(
        async ({ fencingToken }) => {
          const start = performance.now()
          log(`${at()}  ${name} holds it   (round ${round}, fencing token ${fencingToken})`)
          await sleep(holdMs)
          log(`${at()}  ${name} releases it`)
          intervals.push({ worker: name, fencingToken: fencingToken!, start, end: performance.now() })
        },
        { retry: { delay: 20 } },
      )
    }
  }
  await Promise.all(Array.from({ length: workers }, (_, i) => worker(`worker-${i + 1}`)))
  return intervals
}

/** The overlapping pairs of critical sections, ordered by fencing token: empty when the lock held. */
export function overlaps(intervals: Interval[]): [Interval, Interval][] {
  const byToken = [...intervals].sort((a, b) => a.fencingToken - b.fencingToken)
  const found: [Interval, Interval][] = []
  for (let i = 1; i < byToken.length; i++) {
    const previous = byToken[i - 1]!
    const current = byToken[i]!
    if (current.start < previous.end) found.push([previous, current])
  }
  return found
}

export function createVerrou() {
  return new Verrou({ default: 'memory', stores: { memory: { driver: memoryStore() } } })
}
