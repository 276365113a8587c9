import type { SectionRecord } from './protocol.js'

/** Sections ordered by fencing token, after checking every token is a distinct positive safe integer. */
export function byToken(records: SectionRecord[]): SectionRecord[] {
  const sorted = [...records].sort((a, b) => a.token - b.token)
  for (let index = 0; index < sorted.length; index++) {
    const token = sorted[index]!.token
    if (!Number.isSafeInteger(token) || token < 1) throw new Error(`invalid fencing token ${token}`)
    if (index > 0 && sorted[index - 1]!.token === token) throw new Error(`fencing token ${token} was handed out twice`)
  }
  return sorted
}

/**
 * Mutual exclusion with tokens increasing in time: ordered by token, each holder must start strictly after
 * the previous one ended. Returns the adjacent pairs that break it, described (empty when exclusion held).
 */
export function exclusionBreaks(records: SectionRecord[]): string[] {
  const sorted = byToken(records)
  const breaks: string[] = []
  for (let index = 1; index < sorted.length; index++) {
    const previous = sorted[index - 1]!
    const current = sorted[index]!
    if (!(current.acquiredAt > previous.endedAt))
      breaks.push(`overlap: ${describeSection(previous)} and ${describeSection(current)}`)
  }
  return breaks
}

/** Pairs (by token) where the older holder's interval reaches into the newer holder's: overlaps. */
export function overlappingPairs(records: SectionRecord[]): Array<[older: SectionRecord, newer: SectionRecord]> {
  const sorted = byToken(records)
  const pairs: Array<[SectionRecord, SectionRecord]> = []
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      if (sorted[i]!.endedAt > sorted[j]!.acquiredAt) pairs.push([sorted[i]!, sorted[j]!])
    }
  }
  return pairs
}

/**
 * "Tokens strictly increase in time": whenever a section's acquire was sent after another section
 * already held the lock, its token must be the higher one. Returns the pairs that break this.
 */
export function tokenTimeInversions(records: SectionRecord[]): Array<[first: SectionRecord, later: SectionRecord]> {
  const inversions: Array<[SectionRecord, SectionRecord]> = []
  for (const first of records) {
    for (const later of records) {
      if (later.requestedAt > first.acquiredAt && later.token <= first.token && later !== first) {
        inversions.push([first, later])
      }
    }
  }
  return inversions
}

/**
 * Stale writes the fenced resource must have refused: a section's write sent after a section with a
 * higher token had already been answered by the resource. Returns those that were accepted anyway.
 */
export function staleWritesAccepted(records: SectionRecord[]): SectionRecord[] {
  const wrong: SectionRecord[] = []
  for (const section of records) {
    if (section.write === undefined || !section.write.accepted) continue
    const overtaken = records.some(
      (newer) => newer.token > section.token && newer.read !== undefined && newer.read.at < section.write!.sentAt,
    )
    if (overtaken) wrong.push(section)
  }
  return wrong
}

export function describeSection(section: SectionRecord): string {
  const t0 = Math.floor(section.requestedAt)
  return `token ${section.token} (pid ${section.pid}): held ${(section.acquiredAt - t0).toFixed(2)}..${(section.endedAt - t0).toFixed(2)} ms after ${t0}`
}

/** The most sections of `modes` holding at one instant (intervals from acquire resolving to release being sent). */
export function mostAtOnce(records: SectionRecord[], modes: readonly SectionRecord['mode'][]): number {
  const events = records
    .filter((record) => modes.includes(record.mode))
    // At equal times an end comes before a start: touching intervals do not overlap.
    .flatMap((record) => [
      { at: record.acquiredAt, change: 1 },
      { at: record.endedAt, change: -1 },
    ])
    .sort((a, b) => a.at - b.at || a.change - b.change)
  let current = 0
  let most = 0
  for (const event of events) {
    current += event.change
    most = Math.max(most, current)
  }
  return most
}

/** Pairs where a writer's interval meets any other holder's: a reader beside a writer, or two writers. */
export function writerOverlaps(records: SectionRecord[]): string[] {
  const writers = records.filter((record) => record.mode === 'write')
  const found: string[] = []
  for (const writer of writers) {
    for (const other of records) {
      if (other === writer || (other.mode === 'write' && other.token < writer.token)) continue
      if (other.acquiredAt < writer.endedAt && writer.acquiredAt < other.endedAt) {
        found.push(`${describeSection(writer)} (write) overlaps ${describeSection(other)} (${other.mode})`)
      }
    }
  }
  return found
}
