import { describe, expect, test } from 'vitest'
import { type Expiring, ExpiryLists } from './expiry_lists.js'
import { monotonicNow } from './timer.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

interface Entry extends Expiring {
  readonly name: string
  expiresAt: number | null
}

function entry(name: string, ttl: number): Entry {
  return { name, expiresAt: monotonicNow() + ttl, expiryPrevious: undefined, expiryNext: undefined, expiryList: undefined }
}

/** An ExpiryLists that records when (monotonic ms) each entry was told it is due. */
function recording() {
  const told: { name: string; at: number; due: number }[] = []
  const lists = new ExpiryLists<Entry>((due) => told.push({ name: due.name, at: monotonicNow(), due: due.expiresAt! }))
  return { lists, told }
}

const timeouts = () => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length

describe('ExpiryLists: entries told when due, one timer per ttl', () => {
  test('entries are told in order, each at its own time and never before it', async () => {
    const { lists, told } = recording()
    const first = entry('first', 30)
    lists.add(first, 30)
    await sleep(10)
    const second = entry('second', 30)
    lists.add(second, 30)
    const other = entry('other', 15)
    lists.add(other, 15)
    await sleep(80)
    expect(told.map((t) => t.name)).toEqual(['other', 'first', 'second'])
    for (const t of told) {
      expect(t.at).toBeGreaterThanOrEqual(t.due)
      expect(t.at).toBeLessThan(t.due + 40)
    }
  })

  test('a removed entry is never told; removing twice, or an entry never added, changes nothing', async () => {
    const { lists, told } = recording()
    const kept = entry('kept', 20)
    const removed = entry('removed', 20)
    lists.add(removed, 20)
    lists.add(kept, 20)
    lists.remove(removed)
    lists.remove(removed)
    lists.remove(entry('stranger', 20))
    await sleep(60)
    expect(told.map((t) => t.name)).toEqual(['kept'])
  })

  test('a list emptied and filled again tells the new entry at its own time, not at the old timer', async () => {
    const { lists, told } = recording()
    const early = entry('early', 40)
    lists.add(early, 40)
    lists.remove(early)
    await sleep(25)
    const late = entry('late', 40)
    lists.add(late, 40)
    // The timer armed for `early` fires about now + 15 ms: too early for `late`, which it waits for.
    await sleep(90)
    expect(told.map((t) => t.name)).toEqual(['late'])
    expect(told[0]!.at).toBeGreaterThanOrEqual(late.expiresAt!)
  })

  test('an entry re-added while the list expires (moved to a later time) is told again later', async () => {
    const told: string[] = []
    const lists: ExpiryLists<Entry> = new ExpiryLists<Entry>((due) => {
      told.push(due.name)
      if (told.length === 1) {
        due.expiresAt = monotonicNow() + 20
        lists.add(due, 20)
      }
    })
    lists.add(entry('again', 20), 20)
    await sleep(100)
    expect(told).toEqual(['again', 'again'])
  })

  test('an entry moved to another ttl is told at its new time only', async () => {
    const { lists, told } = recording()
    const moved = entry('moved', 20)
    lists.add(moved, 20)
    lists.remove(moved)
    moved.expiresAt = monotonicNow() + 60
    lists.add(moved, 60)
    await sleep(40)
    expect(told).toEqual([])
    await sleep(60)
    expect(told.map((t) => t.name)).toEqual(['moved'])
  })

  test('its timers never keep the process alive', () => {
    const before = timeouts()
    const { lists } = recording()
    lists.add(entry('a', 10_000), 10_000)
    lists.add(entry('b', 5_000), 5_000)
    expect(timeouts()).toBe(before)
  })
})
