import { expect, test } from 'vitest'
import { contend, createVerrou, overlaps } from './contention.js'

test('the demo workers never overlap, and every round runs', async () => {
  const lines: string[] = []
  const intervals = await contend(createVerrou().use('memory'), { workers: 5, rounds: 4, holdMs: 5, log: (l) => lines.push(l) })
  expect(intervals).toHaveLength(20)
  expect(overlaps(intervals)).toEqual([])
  expect(lines.filter((l) => l.includes('holds it'))).toHaveLength(20)
})

test('overlaps() does notice overlapping sections', () => {
  expect(
    overlaps([
      { worker: 'a', fencingToken: 1, start: 0, end: 10 },
      { worker: 'b', fencingToken: 2, start: 5, end: 15 },
    ]),
  ).toHaveLength(1)
})
