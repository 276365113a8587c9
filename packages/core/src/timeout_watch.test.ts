import { describe, expect, test } from 'vitest'
import { TimeoutWatch } from './timeout_watch.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Resolves with performance.now() when the watch says `onTimeout`. */
function timedOut(watch: TimeoutWatch): { at: Promise<number>; cancel: () => void } {
  let cancel = () => {}
  const at = new Promise<number>((resolve) => {
    cancel = watch.watch(() => resolve(performance.now()))
  })
  return { at, cancel }
}

const timeouts = () => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length

describe('TimeoutWatch: every call of a factory timed out on one timer', () => {
  test('a call is timed out once its time has passed, never before', async () => {
    const watch = new TimeoutWatch(30)
    const startedAt = performance.now()
    const { at } = timedOut(watch)
    expect(await at).toBeGreaterThanOrEqual(startedAt + 30)
  })

  test('each call is timed out at its own time, counted from its own start; a cancelled one never is', async () => {
    const watch = new TimeoutWatch(60)
    const first = timedOut(watch)
    let firstFired = false
    first.at.then(() => {
      firstFired = true
    })
    await sleep(25)
    const secondStart = performance.now()
    const second = timedOut(watch)
    first.cancel()
    const secondAt = await second.at
    // The timer was armed for the first call: it found it gone and waited on for the second.
    expect(secondAt).toBeGreaterThanOrEqual(secondStart + 60)
    expect(secondAt).toBeLessThan(secondStart + 60 + 40)
    expect(firstFired).toBe(false)
  })

  test('calls cancelled from the middle, the front and the back leave the others timed out in order', async () => {
    const watch = new TimeoutWatch(40)
    const calls = Array.from({ length: 5 }, () => timedOut(watch))
    const told: number[] = []
    for (const [index, call] of calls.entries()) call.at.then(() => told.push(index))
    calls[2]!.cancel()
    calls[0]!.cancel()
    calls[4]!.cancel()
    // Cancelling twice changes nothing.
    calls[2]!.cancel()
    await Promise.all([calls[1]!.at, calls[3]!.at])
    await sleep(20)
    expect(told).toEqual([1, 3])
    // Told calls are gone: cancelling them afterwards is harmless, and a new call is timed out as usual.
    calls[1]!.cancel()
    const startedAt = performance.now()
    expect(await timedOut(watch).at).toBeGreaterThanOrEqual(startedAt + 40)
  })

  test('a call started by a timeout does not hold up older calls, and adds no timer', async () => {
    const before = timeouts()
    const watch = new TimeoutWatch(50)
    let later: Promise<number> | undefined
    const first = new Promise<number>((resolve) => {
      watch.watch(() => {
        later = timedOut(watch).at
        resolve(performance.now())
      })
    })
    await sleep(10)
    const secondStart = performance.now()
    const second = timedOut(watch)
    const firstAt = await first
    // One timer, for the second call: the third call's start armed none of its own.
    expect(timeouts()).toBe(before + 1)
    const secondAt = await second.at
    // Told about 10 ms after the first, not a whole timeout after the call the first one started.
    expect(secondAt).toBeGreaterThanOrEqual(secondStart + 50)
    expect(secondAt).toBeLessThan(firstAt + 40)
    expect(await later).toBeGreaterThanOrEqual(firstAt + 50)
  })

  test('the timer holds the process open only while a call is outstanding', async () => {
    const before = timeouts()
    const watch = new TimeoutWatch(10_000)
    const cancelFirst = watch.watch(() => {})
    const cancelSecond = watch.watch(() => {})
    expect(timeouts()).toBe(before + 1)
    cancelFirst()
    expect(timeouts()).toBe(before + 1)
    cancelSecond()
    expect(timeouts()).toBe(before)
    // Outstanding again: held again, by the same timer.
    const cancelThird = watch.watch(() => {})
    expect(timeouts()).toBe(before + 1)
    cancelThird()
    expect(timeouts()).toBe(before)
  })

  test('a timeout too long for one setTimeout is still kept', async () => {
    const watch = new TimeoutWatch(2 ** 31 + 5)
    let fired = false
    const cancel = watch.watch(() => {
      fired = true
    })
    await sleep(20)
    expect(fired).toBe(false)
    cancel()
  })
})
