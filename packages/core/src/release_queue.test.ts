import { describe, expect, test } from 'vitest'
import { MemoryStore } from './memory_store.js'
import { joinReleaseQueue } from './release_queue.js'

const silent = { trace() {}, debug() {}, info() {}, warn() {}, error() {} }

/** A store whose announcements the test makes itself, through the listener it captured. */
function announcer() {
  const store = new MemoryStore()
  let announce: ((next?: string) => void) | undefined
  store.subscribeToReleases = async (_key, listener) => {
    announce = listener
    return () => {}
  }
  return { store, announce: (next?: string) => announce?.(next) }
}

/** Which of `names` wake within `ms` of sleeping. */
async function woken(sleeps: Record<string, Promise<void>>, ms: number): Promise<string[]> {
  const done: string[] = []
  for (const [name, sleeping] of Object.entries(sleeps)) void sleeping.then(() => done.push(name))
  await new Promise((resolve) => setTimeout(resolve, ms))
  return done.sort()
}

describe('the in-process release queue', () => {
  test('a notification naming an owner wakes that waiter only; a nameless one wakes the first', async () => {
    const { store, announce } = announcer()
    const first = joinReleaseQueue(store, 'k', 'first', silent)!
    const second = joinReleaseQueue(store, 'k', 'second', silent)!
    await first.ready
    const sleeping = { first: first.sleep(5_000), second: second.sleep(5_000) }
    announce('second')
    expect(await woken(sleeping, 30)).toEqual(['second'])
    announce('someone in another process')
    announce()
    expect(await woken({ first: sleeping.first }, 30)).toEqual(['first'])
    first.leave()
    second.leave()
  })
})
