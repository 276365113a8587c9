import { randomUUID } from 'node:crypto'
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb'
import { type AcquireResult, errors, type SharedLockStore, type SharedMode, type WaitOptions } from '@verrou/core'
import {
  conditionFailure,
  FENCING_TOKEN,
  ITEM_RETENTION_MS,
  LAST_WRITE,
  LATEST_LEASE_END,
  MAX_PLACE_LEASE_MS,
  numberOf,
  STORE_NAME,
  sharedItemKey,
  validatePlaceLease,
} from './attributes.js'
import { Expression, number } from './expression.js'
import { PairHints } from './pair_hints.js'
import {
  decodeShared,
  type Holding,
  isLive,
  isLockedFor,
  judge,
  SHARED,
  type SharedPlace,
  type SharedState,
  validateMode,
} from './shared_state.js'
import { errorName, KEY_ATTRIBUTE, TTL_ATTRIBUTE } from './table.js'

/** What the shared store borrows from its `DynamoDBStore`: the same client, table, clock and errors. */
export interface SharedStoreContext {
  client: DynamoDBClient
  table: string
  allowance: number
  clock: () => number
  ready(operation: string, key: string): Promise<void>
  storageError(error: unknown, operation: string, key: string): errors.VerrouError
}

/**
 * Guarded writes a contended acquire makes before it answers "not acquired". Each lost race means another
 * client's grant, join, leave, release or uncontended acquire landed on the key (place renewals do not
 * count), and the failed write returns the newer item, so n clients arriving together are all decided
 * within n tries; 50 leaves room for holders releasing meanwhile.
 */
const MAX_CONTENDED_WRITES = 50
/** Extend retries when the item's TTL moved between its attempts (rare: another holder raised it). */
const MAX_EXTEND_WRITES = 10
const RETENTION_SECONDS = ITEM_RETENTION_MS / 1000

type Refusal = Extract<AcquireResult, { acquired: false }>
/**
 * What made a refusal certain, named so that the next renewal can check it in its condition: a live
 * reader (for a writer), a live place ahead (any, for a writer; a writer's, for a reader). A live writer
 * needs no name.
 */
interface Witness {
  reader?: string
  ahead?: string
}
/** A refusal, with (internal, never returned) the witness for the next one-request renewal. */
type WitnessedRefusal = Refusal & { witness?: Witness }
type Item = Record<string, AttributeValue>

/**
 * Semaphores and read-write locks in the table of a `DynamoDBStore`: one item per shared key, under the
 * partition key `SHARED_KEY_PREFIX + key` (mutex keys cannot start with it). The item holds the writer
 * (`writer`, `writerEnd`), the readers/permits map, the FIFO queue map, the fencing counter, `lastWrite`
 * (the version every guarded write checks) and `ttl`.
 *
 * Time works as for the mutex: DynamoDB has no clock a condition can read, so lease and place ends are
 * epoch ms written by clients; another client counts one as over only once it has been over for
 * `clockSkewAllowance` on its own clock, while a holder (or waiter) judges its own with no allowance.
 *
 * The item's `ttl` only ever rises while anything on the item may be live: each write raises it to cover
 * what it adds (a lease or place end, plus the allowance and the hour of retention), and a write that
 * cannot know the current value sets it only under the condition `ttl <= new value`. A release, force
 * release or extend lowers it again (to what is live plus the hour) when it was left more than an hour
 * above that, e.g. after a lease that never expires ended.
 */
export class DynamoDBSharedStore implements SharedLockStore {
  readonly #context: SharedStoreContext
  /** The pairs last seen keeping a place, with the witness of their refusal and the mode they asked in. */
  readonly #hints = new PairHints<Witness & { exclusive: boolean; limit: number | null }>()

  constructor(context: SharedStoreContext) {
    this.#context = context
  }

  async acquire(key: string, owner: string, mode: SharedMode, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    validateMode(mode)
    const pk = sharedItemKey(key)
    if (wait !== undefined) validatePlaceLease(wait)
    await this.#context.ready('acquire', key)
    const now = this.#context.clock()
    // A waiter this store saw keep a place renews it in one request while its refusal is certain; every
    // other call starts with the uncontended write. Either returns the item when its condition fails.
    const hint = wait === undefined ? undefined : this.#hints.get(key, owner)
    const first =
      wait !== undefined && hint !== undefined && hint.exclusive === mode.exclusive && hint.limit === askedLimit(mode)
        ? await this.#renewPlace(pk, key, owner, mode, this.#placeEnd(now, wait), now, hint)
        : await this.#takeFree(pk, key, owner, mode, ttl, now)
    if (!('item' in first)) return this.#remember(key, owner, mode, first)
    return this.#remember(key, owner, mode, await this.#contended(pk, key, owner, mode, ttl, wait, first.item, now))
  }

  /** Keeps (or forgets) the hint that lets `owner`'s next attempt start with the one-request renewal. */
  #remember(key: string, owner: string, mode: SharedMode, result: AcquireResult | WitnessedRefusal): AcquireResult {
    if (result.acquired) {
      this.#hints.delete(key, owner)
      return result
    }
    const { witness, ...refusal } = result as WitnessedRefusal
    if (refusal.position === undefined || witness === undefined) this.#hints.delete(key, owner)
    else this.#hints.set(key, owner, { ...witness, exclusive: mode.exclusive, limit: askedLimit(mode) })
    return refusal
  }

  #placeEnd(now: number, wait: WaitOptions): number {
    return now + Math.min(wait.lease, MAX_PLACE_LEASE_MS)
  }

  /**
   * The uncontended acquire, one conditional UpdateItem: nobody waits, no live writer, and for a writer no
   * reader entry at all (live or not), for a permit fewer reader entries than `limit` (expired ones count:
   * the condition cannot read their leases, so it may refuse a grant the full decision then makes, never
   * the reverse). Otherwise the item as DynamoDB evaluated the condition.
   */
  async #takeFree(
    pk: string,
    key: string,
    owner: string,
    mode: SharedMode,
    ttl: number | null,
    now: number,
  ): Promise<AcquireResult | { item: Item }> {
    const write = randomUUID()
    const leaseEnd = this.#leaseEnd(now, ttl)
    const ttlSeconds = this.#ttlSeconds(leaseEnd ?? LATEST_LEASE_END)
    const e = new Expression()
    const writer = e.path(SHARED.writer)
    const writerEnd = e.path(SHARED.writerEnd)
    const readers = e.path(SHARED.readers)
    const queue = e.path(SHARED.queue)
    const ttlPath = e.path(TTL_ATTRIBUTE)
    const token = e.path(FENCING_TOKEN)
    const zero = e.value(number(0))
    e.when(`attribute_not_exists(${writer}) OR ${writerEnd} <= ${e.value(number(now - this.#context.allowance))}`)
    e.when(`attribute_not_exists(${queue}) OR size(${queue}) = ${zero}`)
    // Only raises the TTL; an item whose TTL is already later goes the guarded way, which keeps the maximum.
    e.when(`attribute_not_exists(${ttlPath}) OR ${ttlPath} <= ${e.value(number(ttlSeconds))}`)
    if (mode.exclusive) {
      e.when(`attribute_not_exists(${readers}) OR size(${readers}) = ${zero}`)
      e.set(writer, e.value({ S: owner }))
      if (leaseEnd === undefined) e.remove(writerEnd)
      else e.set(writerEnd, e.value(number(leaseEnd)))
      e.set(readers, e.value({ M: {} }))
    } else {
      // A reader is added by path, so the readers map must exist; the first reader of a new item goes the
      // guarded way, which creates it.
      const me = e.path(SHARED.readers, owner)
      e.when(`attribute_exists(${readers}) AND attribute_not_exists(${me})`)
      if (mode.limit !== null) e.when(`size(${readers}) < ${e.value(number(mode.limit))}`)
      e.set(me, e.value(holdingValue(leaseEnd)))
    }
    // The counter rises in the same write that grants; a missing one (new item, or one TTL deleted)
    // starts from the clock floor.
    e.set(token, `if_not_exists(${token}, ${e.value(number(tokenFloor(now)))}) + ${e.value(number(1))}`)
    e.set(e.path(LAST_WRITE), e.value({ S: write }))
    e.set(ttlPath, e.value(number(ttlSeconds)))
    try {
      const output = await this.#send(pk, { ...e.build(), ReturnValues: 'UPDATED_NEW' })
      return { acquired: true, fencingToken: this.#token(output.Attributes, key) }
    } catch (error) {
      const current = conditionFailure(error)
      if (current === undefined) {
        // Should DynamoDB ever check the reader's path before the condition, decide on a fresh read.
        if (errorName(error) === 'ValidationException' && /document path/i.test(String((error as Error).message))) {
          return { item: await this.#read(pk, key, 'acquire') }
        }
        throw this.#context.storageError(error, 'acquire', key)
      }
      // The SDK retried a request whose first attempt had succeeded: the grant is ours.
      if (current[LAST_WRITE]?.S === write) return { acquired: true, fencingToken: this.#token(current, key) }
      return { item: current }
    }
  }

  /**
   * Decides on `item` by the grant rule, and writes the decision (grant, or join) with the condition
   * `lastWrite = <the id read>`, so it applies only to the very state it was decided on. A waiter that
   * keeps its place renews it in place, without a new `lastWrite`, so polling waiters never make another
   * client's decision fail. A lost race returns the newer item, decided on again, a bounded number of times.
   */
  async #contended(
    pk: string,
    key: string,
    owner: string,
    mode: SharedMode,
    ttl: number | null,
    wait: WaitOptions | undefined,
    item: Item,
    now: number,
  ): Promise<AcquireResult | WitnessedRefusal> {
    let current = item
    let at = now
    for (let round = 0; ; round++) {
      const state = decodeShared(current, key)
      const stale = at - this.#context.allowance
      const verdict = judge(state, owner, mode, stale)
      const refusal = this.#refusal(verdict.blocking, at)
      if (!verdict.granted && wait === undefined) return refusal
      if (round >= MAX_CONTENDED_WRITES) return refusal
      const placeEnd = wait === undefined ? 0 : this.#placeEnd(at, wait)
      const mine = state.places.find((place) => place.owner === owner && place.leaseEnd > at)
      const sameAsk = mine !== undefined && mine.exclusive === mode.exclusive && mine.limit === askedLimit(mode)
      if (!verdict.granted && sameAsk && state.ttl !== undefined && state.ttl >= this.#coveringTtl(placeEnd)) {
        const renewed = await this.#renewPlace(pk, key, owner, mode, placeEnd, at, undefined)
        if (!('item' in renewed)) return renewed
        current = renewed.item
      } else {
        const write = randomUUID()
        const e = new Expression()
        this.#guard(e, current)
        e.set(e.path(LAST_WRITE), e.value({ S: write }))
        let token = 0
        if (verdict.granted) {
          token = this.#nextToken(current, key, at)
          e.set(e.path(FENCING_TOKEN), e.value(number(token)))
          this.#grant(e, state, owner, mode, this.#leaseEnd(at, ttl))
        } else {
          this.#join(e, state, owner, mode, placeEnd, mine)
        }
        this.#prune(e, state, owner, mode, verdict.granted, stale)
        const end = verdict.granted ? (this.#leaseEnd(at, ttl) ?? LATEST_LEASE_END) : placeEnd
        e.set(e.path(TTL_ATTRIBUTE), e.value(number(this.#raisedTtl(state, end, at))))
        try {
          await this.#send(pk, e.build())
          if (verdict.granted) return { acquired: true, fencingToken: token }
          return this.#joined(refusal, state, verdict.livePlaces, owner, mode, mine?.order, stale)
        } catch (error) {
          const newer = conditionFailure(error)
          if (newer === undefined) throw this.#context.storageError(error, 'acquire', key)
          // Our own write, applied before the SDK retried it: the decision stands.
          if (newer[LAST_WRITE]?.S === write) {
            if (verdict.granted) return { acquired: true, fencingToken: this.#token(newer, key) }
            return this.#joined(refusal, state, verdict.livePlaces, owner, mode, mine?.order, stale)
          }
          current = newer
        }
      }
      at = this.#context.clock()
    }
  }

  /** The refusal after a join written on `state`: position, and the witness of the next renewal. */
  #joined(
    refusal: Refusal,
    state: SharedState,
    livePlaces: SharedPlace[],
    owner: string,
    mode: SharedMode,
    order: number | undefined,
    stale: number,
  ): WitnessedRefusal {
    const position = positionAfterJoin(livePlaces, owner, order)
    return { ...refusal, position, witness: witnessOf(state, owner, mode, stale, order ?? Number.POSITIVE_INFINITY) }
  }

  /** Adds `owner` as a holder in `mode`. */
  #grant(e: Expression, state: SharedState, owner: string, mode: SharedMode, leaseEnd: number | undefined): void {
    if (mode.exclusive) {
      e.set(e.path(SHARED.writer), e.value({ S: owner }))
      if (leaseEnd === undefined) e.remove(e.path(SHARED.writerEnd))
      else e.set(e.path(SHARED.writerEnd), e.value(number(leaseEnd)))
      if (!state.hasReadersMap) e.set(e.path(SHARED.readers), e.value({ M: {} }))
    } else if (state.hasReadersMap) {
      e.set(e.path(SHARED.readers, owner), e.value(holdingValue(leaseEnd)))
    } else {
      e.set(e.path(SHARED.readers), e.value({ M: { [owner]: holdingValue(leaseEnd) } }))
    }
    const place = state.places.find((candidate) => candidate.owner === owner)
    if (place !== undefined) e.remove(e.path(SHARED.queue, owner))
  }

  /**
   * Puts `owner`'s place: `mine` (its place, live by our own clock) keeps its rank with a new lease and
   * ask; without it (never joined, or a place our clock says has ended: lost) it goes to the tail.
   */
  #join(
    e: Expression,
    state: SharedState,
    owner: string,
    mode: SharedMode,
    placeEnd: number,
    mine: SharedPlace | undefined,
  ): void {
    const order = mine?.order ?? state.places.reduce((latest, place) => Math.max(latest, place.order), 0) + 1
    const value = placeValue(order, placeEnd, mode)
    if (state.hasQueueMap) e.set(e.path(SHARED.queue, owner), e.value(value))
    else e.set(e.path(SHARED.queue), e.value({ M: { [owner]: value } }))
  }

  /**
   * Drops what is over for everyone (dead places, expired readers, an expired writer), entry by entry so
   * that a place renewed meanwhile is kept, leaving alone the entries the grant or join itself writes.
   */
  #prune(e: Expression, state: SharedState, owner: string, mode: SharedMode, granted: boolean, stale: number): void {
    for (const place of state.places) {
      if (place.owner !== owner && place.leaseEnd <= stale) e.remove(e.path(SHARED.queue, place.owner))
    }
    for (const reader of state.readers) {
      const rewritten = granted && !mode.exclusive && reader.owner === owner
      if (!rewritten && !isLive(reader.leaseEnd, stale)) e.remove(e.path(SHARED.readers, reader.owner))
    }
    const writerRewritten = granted && mode.exclusive
    if (!writerRewritten && state.writer !== undefined && !isLive(state.writer.leaseEnd, stale)) {
      e.remove(e.path(SHARED.writer))
      e.remove(e.path(SHARED.writerEnd))
    }
  }

  /**
   * The TTL a guarded write sets: never lower than the item's, and covering everything live after it
   * (`end`: the lease it grants, or the place lease it writes).
   */
  #raisedTtl(state: SharedState, end: number, now: number): number {
    return Math.max(state.ttl ?? 0, this.#ttlSeconds(Math.max(this.#needed(state, now), end)))
  }

  /** The latest end among live holders and places (a lease without end counts as the latest), or `now`. */
  #needed(state: SharedState, now: number): number {
    const stale = now - this.#context.allowance
    let latest = now
    const holders: Holding[] = state.writer === undefined ? state.readers : [state.writer, ...state.readers]
    for (const holder of holders) {
      if (isLive(holder.leaseEnd, stale)) latest = Math.max(latest, holder.leaseEnd ?? LATEST_LEASE_END)
    }
    for (const place of state.places) if (place.leaseEnd > stale) latest = Math.max(latest, place.leaseEnd)
    return latest
  }

  /**
   * Renews `owner`'s place lease in place, leaving `lastWrite` alone (it decides nothing for anyone else).
   * Applies only while the place exists and is live by our own clock with no allowance (so a place others
   * may already have skipped is never revived) and while the item's TTL outlives the renewed place.
   * With a `witness` (the first request of an attempt, decided on no read), also only while the refusal is
   * certain: a live writer other than us holds, or the witnessed reader still holds (we want to write),
   * or the witnessed place is still live and ahead of ours (and wants to write, if we want to read).
   * Returns the refusal the item now means, or the item as it was when the condition failed.
   */
  async #renewPlace(
    pk: string,
    key: string,
    owner: string,
    mode: SharedMode,
    placeEnd: number,
    now: number,
    witness: Witness | undefined,
  ): Promise<WitnessedRefusal | { item: Item }> {
    const e = new Expression()
    const place = e.path(SHARED.queue, owner)
    const placeLeaseEnd = e.path(SHARED.queue, owner, SHARED.leaseEnd)
    const ttlPath = e.path(TTL_ATTRIBUTE)
    const stale = now - this.#context.allowance
    e.when(`attribute_exists(${place}) AND ${placeLeaseEnd} > ${e.value(number(now))}`)
    e.when(`${ttlPath} >= ${e.value(number(this.#coveringTtl(placeEnd)))}`)
    if (witness !== undefined) {
      const staleValue = e.value(number(stale))
      const writer = e.path(SHARED.writer)
      const writerEnd = e.path(SHARED.writerEnd)
      const certain = [
        `attribute_exists(${writer}) AND ${writer} <> ${e.value({ S: owner })} AND (attribute_not_exists(${writerEnd}) OR ${writerEnd} > ${staleValue})`,
      ]
      if (mode.exclusive && witness.reader !== undefined) {
        const reader = e.path(SHARED.readers, witness.reader)
        const readerEnd = e.path(SHARED.readers, witness.reader, SHARED.leaseEnd)
        certain.push(`attribute_exists(${reader}) AND (attribute_not_exists(${readerEnd}) OR ${readerEnd} > ${staleValue})`)
      }
      if (witness.ahead !== undefined) {
        const ahead = e.path(SHARED.queue, witness.ahead)
        const order = e.path(SHARED.order)
        const writes = mode.exclusive ? '' : ` AND ${ahead}.${e.path(SHARED.exclusive)} = ${e.value({ BOOL: true })}`
        certain.push(`${ahead}.${e.path(SHARED.leaseEnd)} > ${staleValue} AND ${ahead}.${order} < ${place}.${order}${writes}`)
      }
      // DynamoDB refuses redundant parentheses: a single alternative is not wrapped twice.
      e.when(certain.length === 1 ? (certain[0] as string) : certain.map((part) => `(${part})`).join(' OR '))
    }
    e.set(placeLeaseEnd, e.value(number(placeEnd)))
    try {
      const output = await this.#send(pk, { ...e.build(), ReturnValues: 'ALL_NEW' })
      const state = decodeShared(output.Attributes ?? {}, key)
      const verdict = judge(state, owner, mode, stale)
      const refusal: WitnessedRefusal = this.#refusal(verdict.blocking, now)
      const live = verdict.livePlaces
      const mine = live.find((candidate) => candidate.owner === owner)
      if (mine !== undefined) {
        refusal.position = live.indexOf(mine)
        refusal.witness = witnessOf(state, owner, mode, stale, mine.order)
      }
      return refusal
    } catch (error) {
      const current = conditionFailure(error)
      if (current === undefined) throw this.#context.storageError(error, 'acquire', key)
      return { item: current }
    }
  }

  async release(key: string, owner: string, mode: SharedMode): Promise<boolean> {
    validateMode(mode)
    const pk = sharedItemKey(key)
    await this.#context.ready('release', key)
    const now = this.#context.clock()
    const write = randomUUID()
    const e = new Expression()
    this.#ownedBy(e, owner, mode, now)
    if (mode.exclusive) e.remove(e.path(SHARED.writer)).remove(e.path(SHARED.writerEnd))
    else e.remove(e.path(SHARED.readers, owner))
    e.set(e.path(LAST_WRITE), e.value({ S: write }))
    try {
      const output = await this.#send(pk, { ...e.build(), ReturnValues: 'ALL_NEW' })
      await this.#lowerTtl(pk, key, output.Attributes ?? {}, write, now)
      return true
    } catch (error) {
      const current = conditionFailure(error)
      if (current === undefined) throw this.#context.storageError(error, 'release', key)
      // Our own earlier attempt of this very request succeeded before the SDK retried it.
      return current[LAST_WRITE]?.S === write
    }
  }

  async extend(key: string, owner: string, mode: SharedMode, ttl: number | null): Promise<boolean> {
    validateMode(mode)
    const pk = sharedItemKey(key)
    await this.#context.ready('extend', key)
    const now = this.#context.clock()
    const leaseEnd = this.#leaseEnd(now, ttl)
    const ttlSeconds = this.#ttlSeconds(leaseEnd ?? LATEST_LEASE_END)
    // First raise the TTL along (only if that raises it); if the item's TTL is already later, keep it.
    let raise = true
    for (let round = 0; round < MAX_EXTEND_WRITES; round++) {
      const write = randomUUID()
      const e = new Expression()
      this.#ownedBy(e, owner, mode, now)
      const ttlPath = e.path(TTL_ATTRIBUTE)
      const bound = e.value(number(ttlSeconds))
      if (raise) {
        e.when(`attribute_not_exists(${ttlPath}) OR ${ttlPath} <= ${bound}`)
        e.set(ttlPath, bound)
      } else {
        e.when(`${ttlPath} > ${bound}`)
      }
      if (mode.exclusive) {
        if (leaseEnd === undefined) e.remove(e.path(SHARED.writerEnd))
        else e.set(e.path(SHARED.writerEnd), e.value(number(leaseEnd)))
      } else {
        e.set(e.path(SHARED.readers, owner), e.value(holdingValue(leaseEnd)))
      }
      e.set(e.path(LAST_WRITE), e.value({ S: write }))
      try {
        const output = await this.#send(pk, { ...e.build(), ReturnValues: 'ALL_NEW' })
        // A TTL left far above what is live (this lease never ended before, say) comes down.
        if (!raise) await this.#lowerTtl(pk, key, output.Attributes ?? {}, write, now)
        return true
      } catch (error) {
        const current = conditionFailure(error)
        if (current === undefined) throw this.#context.storageError(error, 'extend', key)
        if (current[LAST_WRITE]?.S === write) return true
        // Judged as the condition did: by our own clock, with no allowance.
        if (!holds(decodeShared(current, key), owner, now, mode)) return false
        raise = !((numberOf(current[TTL_ATTRIBUTE]) ?? 0) > ttlSeconds)
      }
    }
    throw errors.E_LOCK_STORAGE_ERROR.from(undefined, {
      operation: 'extend',
      key,
      store: STORE_NAME,
      detail: `the item's TTL kept changing during ${MAX_EXTEND_WRITES} attempts`,
    })
  }

  async forceRelease(key: string, mode: SharedMode): Promise<void> {
    validateMode(mode)
    const pk = sharedItemKey(key)
    await this.#context.ready('force release', key)
    const now = this.#context.clock()
    const write = randomUUID()
    const e = new Expression()
    // Never create an item for a key nobody ever locked.
    e.when(`attribute_exists(${e.path(KEY_ATTRIBUTE)})`)
    if (mode.exclusive) e.remove(e.path(SHARED.writer)).remove(e.path(SHARED.writerEnd))
    else e.set(e.path(SHARED.readers), e.value({ M: {} }))
    e.set(e.path(LAST_WRITE), e.value({ S: write }))
    try {
      const output = await this.#send(pk, { ...e.build(), ReturnValues: 'ALL_NEW' })
      await this.#lowerTtl(pk, key, output.Attributes ?? {}, write, now)
    } catch (error) {
      if (conditionFailure(error) === undefined) throw this.#context.storageError(error, 'force release', key)
    }
  }

  async isLocked(key: string, mode: SharedMode): Promise<boolean> {
    validateMode(mode)
    const pk = sharedItemKey(key)
    await this.#context.ready('check', key)
    const item = await this.#read(pk, key, 'check')
    // Locked exactly as long as an acquire by someone else would be refused for a holder.
    return isLockedFor(decodeShared(item, key), mode, this.#context.clock() - this.#context.allowance)
  }

  /**
   * Removes `owner`'s place in one conditional write that changes nothing when it has none. Nothing is
   * announced: this store has no notifications, and the next waiter finds itself admitted on its next poll.
   */
  async leaveQueue(key: string, owner: string): Promise<void> {
    const pk = sharedItemKey(key)
    await this.#context.ready('leave queue', key)
    this.#hints.delete(key, owner)
    const e = new Expression()
    const place = e.path(SHARED.queue, owner)
    e.when(`attribute_exists(${place})`)
    e.remove(place)
    // A new write id: a grant or join decided on the queue with this place in it is decided again.
    e.set(e.path(LAST_WRITE), e.value({ S: randomUUID() }))
    try {
      await this.#send(pk, e.build())
    } catch (error) {
      if (conditionFailure(error) === undefined) throw this.#context.storageError(error, 'leave queue', key)
    }
  }

  /** The condition of release and extend: `owner` holds in `mode` and its lease has not ended on our clock. */
  #ownedBy(e: Expression, owner: string, mode: SharedMode, now: number): void {
    const at = e.value(number(now))
    if (mode.exclusive) {
      const end = e.path(SHARED.writerEnd)
      e.when(`${e.path(SHARED.writer)} = ${e.value({ S: owner })} AND (attribute_not_exists(${end}) OR ${end} > ${at})`)
    } else {
      const end = e.path(SHARED.readers, owner, SHARED.leaseEnd)
      e.when(`attribute_exists(${e.path(SHARED.readers, owner)}) AND (attribute_not_exists(${end}) OR ${end} > ${at})`)
    }
  }

  /**
   * After a release, force release or extend (`item` as it now is, `write` its id): when the TTL is more than an
   * hour above what is still live needs (a lease that never ends, or a long one, has ended), lower it to
   * cover only that, guarded by our write id. Best effort: the release stands whatever happens here, and
   * the next release tries again, so a failure is not reported as a failed release.
   */
  async #lowerTtl(pk: string, key: string, item: Item, write: string, now: number): Promise<void> {
    const state = decodeShared(item, key)
    const wanted = this.#ttlSeconds(this.#needed(state, now))
    if (state.ttl === undefined || state.ttl <= wanted + RETENTION_SECONDS) return
    const e = new Expression()
    e.when(`${e.path(LAST_WRITE)} = ${e.value({ S: write })}`)
    e.set(e.path(TTL_ATTRIBUTE), e.value(number(wanted)))
    try {
      await this.#send(pk, e.build())
    } catch {
      // See above: a lost race or a failure only leaves the item a while longer.
    }
  }

  #guard(e: Expression, item: Item): void {
    const seen = item[LAST_WRITE]?.S
    const path = e.path(LAST_WRITE)
    e.when(seen === undefined ? `attribute_not_exists(${path})` : `${path} = ${e.value({ S: seen })}`)
  }

  #refusal(blocking: Holding[], now: number): Refusal {
    const ends = blocking.flatMap((holder) => (holder.leaseEnd === undefined ? [] : [holder.leaseEnd]))
    if (ends.length === 0) return { acquired: false }
    // The first of them to end is when the answer may change.
    return { acquired: false, expiresIn: Math.max(0, Math.min(...ends) + this.#context.allowance - now) }
  }

  async #send(pk: string, input: Omit<UpdateItemCommandInput, 'TableName' | 'Key'>) {
    return this.#context.client.send(
      new UpdateItemCommand({
        TableName: this.#context.table,
        Key: { [KEY_ATTRIBUTE]: { S: pk } },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        ...input,
      }),
    )
  }

  async #read(pk: string, key: string, operation: string): Promise<Item> {
    try {
      const output = await this.#context.client.send(
        new GetItemCommand({ TableName: this.#context.table, Key: { [KEY_ATTRIBUTE]: { S: pk } }, ConsistentRead: true }),
      )
      return output.Item ?? {}
    } catch (error) {
      throw this.#context.storageError(error, operation, key)
    }
  }

  #leaseEnd(now: number, ttl: number | null): number | undefined {
    return ttl === null ? undefined : Math.min(now + ttl, LATEST_LEASE_END)
  }

  /** The TTL attribute: DynamoDB may delete the item this long after `end` (a lease end, or the last use). */
  #ttlSeconds(end: number): number {
    return Math.ceil((Math.min(end, LATEST_LEASE_END) + this.#context.allowance + ITEM_RETENTION_MS) / 1000)
  }

  /** The least TTL (epoch s) under which the item outlives a place ending at `placeEnd` for everyone. */
  #coveringTtl(placeEnd: number): number {
    return Math.ceil((placeEnd + this.#context.allowance) / 1000)
  }

  #nextToken(item: Item, key: string, now: number): number {
    if (item[FENCING_TOKEN] === undefined) return tokenFloor(now) + 1
    return this.#token(item, key) + 1
  }

  #token(item: Item | undefined, key: string): number {
    const token = numberOf(item?.[FENCING_TOKEN])
    if (token === undefined || !Number.isSafeInteger(token) || token < 1) {
      throw errors.E_LOCK_STORAGE_ERROR.from(item?.[FENCING_TOKEN], {
        operation: 'acquire',
        key,
        store: STORE_NAME,
        detail: 'the item holds no valid fencing token',
      })
    }
    return token
  }
}

/**
 * Where a key's fencing counter restarts when its item is missing: the clock in microseconds, as for mutex
 * keys (an item is deleted no earlier than an hour after its last grant, and one item cannot take a
 * million writes a second, so every earlier token is below it).
 */
function tokenFloor(now: number): number {
  return Math.floor(now) * 1000
}

/** Whether `owner` holds the key (in `mode`'s exclusivity, when given), judging leases at `at`. */
function holds(state: SharedState, owner: string, at: number, mode?: SharedMode): boolean {
  const asWriter = state.writer?.owner === owner && isLive(state.writer.leaseEnd, at)
  const asReader = state.readers.some((reader) => reader.owner === owner && isLive(reader.leaseEnd, at))
  if (mode === undefined) return asWriter || asReader
  return mode.exclusive ? asWriter : asReader
}

/** The limit a request stands for: writers have none. */
function askedLimit(mode: SharedMode): number | null {
  return mode.exclusive ? null : mode.limit
}

function holdingValue(leaseEnd: number | undefined): AttributeValue {
  return { M: leaseEnd === undefined ? {} : { [SHARED.leaseEnd]: number(leaseEnd) } }
}

function placeValue(order: number, leaseEnd: number, mode: SharedMode): AttributeValue {
  return {
    M: {
      [SHARED.order]: number(order),
      [SHARED.leaseEnd]: number(leaseEnd),
      [SHARED.exclusive]: { BOOL: mode.exclusive },
      [SHARED.limit]: askedLimit(mode) === null ? { NULL: true } : number(mode.limit as number),
    },
  }
}

/** The witness of `owner`'s refusal, its place being at `order`. */
function witnessOf(state: SharedState, owner: string, mode: SharedMode, stale: number, order: number): Witness {
  const witness: Witness = {}
  if (mode.exclusive) {
    const reader = state.readers.find((candidate) => candidate.owner !== owner && isLive(candidate.leaseEnd, stale))
    if (reader !== undefined) witness.reader = reader.owner
  }
  const ahead = state.places.filter(
    (place) => place.owner !== owner && place.order < order && place.leaseEnd > stale && (mode.exclusive || place.exclusive),
  )
  const nearest = ahead.at(-1)
  if (nearest !== undefined) witness.ahead = nearest.owner
  return witness
}

/** `owner`'s 0-based position among the live places once its place (kept at `order`, or new at the tail) is in. */
function positionAfterJoin(livePlaces: { owner: string; order: number }[], owner: string, order: number | undefined): number {
  const others = livePlaces.filter((place) => place.owner !== owner)
  return order === undefined ? others.length : others.filter((place) => place.order < order).length
}
