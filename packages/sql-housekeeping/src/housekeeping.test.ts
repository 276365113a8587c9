import { afterEach, describe, expect, test, vi } from 'vitest'
import { Housekeeping } from './housekeeping.js'

afterEach(() => {
  vi.useRealTimers()
})

describe('Housekeeping', () => {
  test('runs at once on start, then once per interval after each run ends, until stopped', async () => {
    vi.useFakeTimers()
    let runs = 0
    const housekeeping = new Housekeeping({
      interval: 1000,
      run: async () => {
        runs++
        return false
      },
      connectionEnded: () => false,
    })
    housekeeping.start()
    housekeeping.start() // a second start changes nothing
    await vi.advanceTimersByTimeAsync(0)
    expect(runs).toBe(1)
    await vi.advanceTimersByTimeAsync(999)
    expect(runs).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(runs).toBe(2)
    housekeeping.stop()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(runs).toBe(2)
  })

  test('a full batch is followed by the next at once, so a backlog drains without waiting out intervals', async () => {
    vi.useFakeTimers()
    let backlog = 5
    let runs = 0
    const housekeeping = new Housekeeping({
      interval: 60_000,
      run: async () => {
        runs++
        backlog--
        return backlog > 0
      },
      connectionEnded: () => false,
    })
    housekeeping.start()
    // A delay of 0 is a timer of 1 ms: ten of them are far from one interval of a minute.
    await vi.advanceTimersByTimeAsync(10)
    expect(runs).toBe(5)
    housekeeping.stop()
  })

  test('a failing run never escapes, and the next waits at least a second however short the interval', async () => {
    vi.useFakeTimers()
    const unhandled = vi.fn()
    process.on('unhandledRejection', unhandled)
    let runs = 0
    const housekeeping = new Housekeeping({
      interval: 10,
      run: async () => {
        runs++
        throw new Error('server down')
      },
      connectionEnded: () => false,
    })
    housekeeping.start()
    await vi.advanceTimersByTimeAsync(0)
    expect(runs).toBe(1)
    await vi.advanceTimersByTimeAsync(999)
    expect(runs).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(runs).toBe(2)
    housekeeping.stop()
    process.off('unhandledRejection', unhandled)
    expect(unhandled).not.toHaveBeenCalled()
  })

  test('stops for good once the connection it uses was ended by its owner', async () => {
    vi.useFakeTimers()
    let runs = 0
    let ended = false
    const housekeeping = new Housekeeping({
      interval: 100,
      run: async () => {
        runs++
        return false
      },
      connectionEnded: () => ended,
    })
    housekeeping.start()
    await vi.advanceTimersByTimeAsync(0)
    ended = true
    await vi.advanceTimersByTimeAsync(100)
    const after = runs
    await vi.advanceTimersByTimeAsync(10_000)
    expect(runs).toBe(after)
    housekeeping.start() // stopped for good: start does nothing
    await vi.advanceTimersByTimeAsync(10_000)
    expect(runs).toBe(after)
  })

  test('its timer never keeps the process alive', () => {
    vi.useRealTimers()
    const unref = vi.spyOn(globalThis, 'setTimeout')
    const housekeeping = new Housekeeping({ interval: 100, run: async () => false, connectionEnded: () => false })
    housekeeping.start()
    const timer = unref.mock.results.at(-1)?.value as NodeJS.Timeout
    expect(timer.hasRef()).toBe(false)
    housekeeping.stop()
    unref.mockRestore()
  })
})
