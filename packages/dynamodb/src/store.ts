import { randomUUID } from 'node:crypto'
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb'
import {
  type AcquireResult,
  claimDelay,
  errors,
  type LockStore,
  PendingClaims,
  type SharedLockStore,
  type WaitOptions,
} from '@verrou/core'
import {
  conditionFailure,
  FENCING_TOKEN,
  ITEM_RETENTION_MS,
  LAST_WRITE,
  LATEST_LEASE_END,
  lastWriteGuard,
  MAX_KEY_BYTES,
  MAX_PLACE_LEASE_MS,
  numberOf,
  SHARED_KEY_PREFIX,
  STORE_NAME,
  utf8Length,
  validatePlaceLease,
} from './attributes.js'
import { PairHints } from './pair_hints.js'
import { DynamoDBSharedStore } from './shared_store.js'
import { ensureTable, errorName, KEY_ATTRIBUTE, TTL_ATTRIBUTE, validateTableName } from './table.js'

export { LATEST_LEASE_END, MAX_PLACE_LEASE_MS }

export interface DynamoDBStoreOptions {
  /** A client you own and configure (region, credentials, retries, timeouts). The store never destroys it. */
  client: DynamoDBClient
  table: {
    /** The table holding one item per lock key. */
    name: string
  }
  /**
   * Create the table if it is missing (on-demand capacity), wait until it is ACTIVE and enable its TTL
   * attribute, once per store, before the first operation. Default `true`. Turn it off when the table is
   * managed by infrastructure code: the store then needs no table-level permissions.
   */
  autoCreateTable?: boolean
  /**
   * Milliseconds by which two clients' clocks may disagree. A lease written by one client is only taken over
   * by another once it has been expired for this long on the taker's clock. Default 1000.
   */
  clockSkewAllowance?: number
  /** This client's wall clock, epoch ms. Default `Date.now`; tests pass a skewed one. */
  clock?: () => number
  /** How long the first operation may wait for a newly created table to become ACTIVE. Default 120 000 ms. */
  tableActiveTimeout?: number
}

/** Item attributes besides the key and TTL ones. */
const OWNER = 'owner'
/** Epoch ms, written by the client that acquired or extended; absent while held for ever. */
const EXPIRES_AT = 'expiresAt'
/**
 * The wait queue: a map from owner id to its place, `{ order: N, leaseEnd: N }`. `order` is the join
 * number (FIFO rank), `leaseEnd` the end of the place lease in epoch ms on the waiter's clock. Absent (or
 * an empty map, after a `leaveQueue`) when nobody waits.
 */
const QUEUE = 'queue'
const PLACE_ORDER = 'order'
const PLACE_LEASE_END = 'leaseEnd'
/**
 * The owner a release handed the lock to, until it claims it (see `release`): present only while the
 * lease is the claim window. Every other write that sets or clears the owner removes it.
 */
const HANDED_TO = 'handedTo'

/**
 * Conditional writes a contended acquire makes before it answers "not acquired". Each lost race means
 * another client's grant, join, leave or lock write landed (renewals do not count), and the failed write
 * returns the item as it now is, so the next try decides on fresh state without a read: n clients joining
 * at the same instant all get a place within n tries.
 */
const MAX_CONTENDED_WRITES = 25
/**
 * A waiter whose place this store wrote less than a quarter of its place lease ago polls with a consistent
 * read instead of a conditional write: a poll then costs half a read unit, not a write unit, and does not
 * contend with the holder's writes. Core attempts at least every third of the lease, so the place is
 * written again within a quarter plus a third of it.
 */
const PEEKS_WITHIN = 4

const NAMES = {
  '#key': KEY_ATTRIBUTE,
  '#owner': OWNER,
  '#expiresAt': EXPIRES_AT,
  '#token': FENCING_TOKEN,
  '#ttl': TTL_ATTRIBUTE,
  '#write': LAST_WRITE,
  '#queue': QUEUE,
  '#handed': HANDED_TO,
}

/**
 * Locks in a DynamoDB table, one item per key. Every operation is a single conditional UpdateItem or a
 * strongly consistent GetItem, except an acquire that meets a queue or must join it: it then decides on the
 * item its failed condition returned and writes that decision with a condition on the item's write id.
 * DynamoDB has no clock usable in conditions, so leases (and waiters' place leases) are epoch-ms times
 * written by clients and compared against the caller's clock, with `clockSkewAllowance` of slack before
 * anyone takes over a lease or skips a place.
 */
export class DynamoDBStore implements LockStore {
  readonly #client: DynamoDBClient
  readonly #table: string
  readonly #autoCreateTable: boolean
  readonly #allowance: number
  readonly #clock: () => number
  readonly #tableActiveTimeout: number
  #tableReady: Promise<void> | undefined
  /** Per waiting pair: the place just ahead when last seen, and when (store clock) its place was last written. */
  readonly #waiting = new PairHints<{ ahead: string | undefined; writtenAt: number }>()
  /** Per holding pair: the owner of the first live place behind it when it was granted, its heir at release. */
  readonly #heirs = new PairHints<string>()
  /**
   * Claims of locks handed over, put off until a quarter of the claim window (see `claimDelay`): a holder
   * that releases sooner never sends the write, which would otherwise queue on the item beside that release.
   */
  readonly #claims = new PendingClaims()
  /** Semaphores and read-write locks, in the same table (see `DynamoDBSharedStore`). */
  readonly shared: SharedLockStore

  constructor(options: DynamoDBStoreOptions) {
    if (options === null || typeof options !== 'object' || options.client === null || typeof options.client !== 'object') {
      throw new errors.E_INVALID_ARGUMENT('dynamodbStore needs { client: DynamoDBClient, table: { name } }')
    }
    validateTableName(options.table?.name)
    this.#client = options.client
    this.#table = options.table.name
    this.#autoCreateTable = options.autoCreateTable ?? true
    this.#allowance = nonNegative(options.clockSkewAllowance, 1000, 'clockSkewAllowance')
    this.#tableActiveTimeout = nonNegative(options.tableActiveTimeout, 120_000, 'tableActiveTimeout')
    this.#clock = options.clock ?? Date.now
    this.shared = new DynamoDBSharedStore({
      client: this.#client,
      table: this.#table,
      allowance: this.#allowance,
      clock: this.#clock,
      ready: (operation, key) => this.#ready(operation, key),
      storageError: (error, operation, key) => this.#storageError(error, operation, key),
    })
  }

  /** The table this store writes to. */
  get tableName(): string {
    return this.#table
  }

  async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    validateKey(key)
    if (wait !== undefined) validatePlaceLease(wait)
    await this.#ready('acquire', key)
    const now = this.#clock()
    // A waiter this store knows to have a place renews it in one request while it is sure to be refused;
    // every other call starts with the uncontended write. Either returns the item when its condition fails.
    const hint = wait === undefined ? undefined : this.#waiting.get(key, owner)
    if (wait !== undefined && hint !== undefined && now - hint.writtenAt < wait.lease / PEEKS_WITHIN) {
      // Its place was written lately: a read (half a read unit, never a write unit) says whether to act.
      const item = await this.#read(key, 'acquire')
      if (item !== undefined) {
        const handed = this.#handedOver(key, owner, ttl, item, now)
        if (handed !== undefined) return this.#remember(key, owner, handed, now)
        const plan = this.#plan(key, owner, ttl, wait, item, now)
        if (plan.kind === 'renew') return this.#remember(key, owner, plan.refusal, hint.writtenAt)
        return this.#remember(key, owner, await this.#contended(key, owner, ttl, wait, item, now), now)
      }
    }
    const first =
      wait !== undefined && hint !== undefined
        ? await this.#renewPlace(key, owner, wait, now, { whileRefused: true, ahead: hint.ahead })
        : await this.#takeFree(key, owner, ttl, now)
    if (!('item' in first)) return this.#remember(key, owner, first, now)
    return this.#remember(key, owner, await this.#contended(key, owner, ttl, wait, first.item, now), now)
  }

  /** The item of `key`, read consistently (undefined when there is none). */
  async #read(key: string, operation: string): Promise<Record<string, AttributeValue> | undefined> {
    try {
      const output = await this.#client.send(
        new GetItemCommand({ TableName: this.#table, Key: { [KEY_ATTRIBUTE]: { S: key } }, ConsistentRead: true }),
      )
      return output.Item
    } catch (error) {
      throw this.#storageError(error, operation, key)
    }
  }

  /**
   * The uncontended acquire, one conditional write: granted if nobody waits (no queue, or an empty one)
   * and nobody holds the lock or the holder's lease ended at least `allowance` ago on our clock. Otherwise
   * the item as DynamoDB evaluated the condition.
   */
  async #takeFree(
    key: string,
    owner: string,
    ttl: number | null,
    now: number,
  ): Promise<AcquireResult | { item: Record<string, AttributeValue> }> {
    const write = randomUUID()
    const take = 'SET #owner = :owner, #write = :write, #token = if_not_exists(#token, :floor) + :one'
    try {
      const output = await this.#client.send(
        new UpdateItemCommand({
          ...this.#target(key),
          // The fencing token is bumped in the same write that takes the lock; a missing counter (new key, or
          // an item DynamoDB's TTL deleted) starts from the clock-based floor.
          UpdateExpression:
            // An empty queue (left by a leave or a hand-over) goes: the condition allows no other.
            ttl === null
              ? `${take} REMOVE #expiresAt, #ttl, #handed, #queue`
              : `${take}, #expiresAt = :expiresAt, #ttl = :ttl REMOVE #handed, #queue`,
          // A lease without expiry has no #expiresAt, so the comparison is false and it stays held.
          ConditionExpression:
            '(attribute_not_exists(#queue) OR size(#queue) = :zero) AND (attribute_not_exists(#owner) OR #expiresAt <= :stale)',
          ExpressionAttributeNames: names('#queue', '#owner', '#write', '#token', '#expiresAt', '#ttl', '#handed'),
          ExpressionAttributeValues: {
            ':owner': { S: owner },
            ':write': { S: write },
            ':floor': { N: String(this.#tokenFloor(now)) },
            ':one': { N: '1' },
            ':zero': { N: '0' },
            ':stale': { N: String(now - this.#allowance) },
            ...(ttl === null ? {} : this.#leaseValues(now, ttl)),
          },
          ReturnValues: 'UPDATED_NEW',
        }),
      )
      // The condition said nobody waits: no heir to hand the lock to at release.
      this.#heirs.delete(key, owner)
      return { acquired: true, fencingToken: this.#token(output.Attributes, key) }
    } catch (error) {
      const current = conditionFailure(error)
      if (current === undefined) throw this.#storageError(error, 'acquire', key)
      // The SDK retried a request whose first attempt succeeded but whose reply was lost: the lock is ours.
      if (current[LAST_WRITE]?.S === write) {
        this.#heirs.delete(key, owner)
        return { acquired: true, fencingToken: this.#token(current, key) }
      }
      return { item: current }
    }
  }

  /**
   * Renews `owner`'s place lease in place, one conditional write that leaves the item's write id alone (it
   * decides nothing for anyone else: it only extends a live place). It applies only while the place exists
   * and is live by our own clock with no allowance (as a holder judges its own lease, so a place others may
   * already have skipped is never revived), and while the item's TTL already outlives the renewed place.
   * `whileRefused`: also only while the refusal is certain without a read: the lock is held, or the place
   * `ahead` (the one just before ours when we last looked) is still there, live and ahead of ours (orders
   * never change, so a place ahead stays ahead). Without it, the caller already decided on a read.
   * Returns the refusal, or the item as it was when the condition failed.
   */
  async #renewPlace(
    key: string,
    owner: string,
    wait: WaitOptions,
    now: number,
    mode: { whileRefused: false } | { whileRefused: true; ahead: string | undefined },
  ): Promise<AcquireResult | { item: Record<string, AttributeValue> }> {
    const placeEnd = this.#placeEnd(now, wait)
    const held = 'attribute_exists(#owner) AND (attribute_not_exists(#expiresAt) OR #expiresAt > :stale)'
    const ahead = mode.whileRefused ? mode.ahead : undefined
    const refused = !mode.whileRefused
      ? ''
      : ahead === undefined
        ? ` AND ${held}`
        : ` AND ((${held}) OR (#queue.#ahead.#leaseEnd > :stale AND #queue.#ahead.#order < #queue.#place.#order))`
    try {
      const output = await this.#client.send(
        new UpdateItemCommand({
          ...this.#target(key),
          UpdateExpression: 'SET #queue.#place.#leaseEnd = :placeEnd',
          ConditionExpression: `attribute_exists(#queue.#place) AND #queue.#place.#leaseEnd > :now AND (attribute_not_exists(#ttl) OR #ttl >= :covering)${refused}`,
          ExpressionAttributeNames: {
            ...names('#queue', '#ttl', ...(mode.whileRefused ? (['#owner', '#expiresAt'] as const) : [])),
            '#place': owner,
            '#leaseEnd': PLACE_LEASE_END,
            ...(ahead === undefined ? {} : { '#ahead': ahead, '#order': PLACE_ORDER }),
          },
          ExpressionAttributeValues: {
            ':placeEnd': { N: String(placeEnd) },
            ':now': { N: String(now) },
            ':covering': { N: String(this.#coveringTtl(placeEnd)) },
            ...(mode.whileRefused ? { ':stale': { N: String(now - this.#allowance) } } : {}),
          },
          ReturnValues: 'ALL_NEW',
        }),
      )
      return this.#refusal(output.Attributes ?? {}, owner, key, now)
    } catch (error) {
      const current = conditionFailure(error)
      if (current === undefined) throw this.#storageError(error, 'acquire', key)
      return { item: current }
    }
  }

  /**
   * Acquire when the first write's condition failed. `item` is the item as DynamoDB evaluated it. The
   * decision follows the queueing rules; a grant or a join is written with a condition on the item's write
   * id, so it applies only to the very state it was decided on. A lost race returns the newer item, decided
   * on again, a bounded number of times.
   */
  async #contended(
    key: string,
    owner: string,
    ttl: number | null,
    wait: WaitOptions | undefined,
    item: Record<string, AttributeValue>,
    now: number,
  ): Promise<AcquireResult> {
    let current = item
    let at = now
    for (let round = 0; ; round++) {
      const handed = this.#handedOver(key, owner, ttl, current, at)
      if (handed !== undefined) return handed
      const plan = this.#plan(key, owner, ttl, wait, current, at)
      if (plan.kind === 'refuse') return plan.refusal
      if (round >= MAX_CONTENDED_WRITES) {
        // Every write lost a race: each loss means another client changed the lock meanwhile, so "not
        // acquired" is a true answer; the caller tries again. A join never written has no position.
        if (plan.kind === 'renew') return plan.refusal
        const { position: _unwritten, ...refusal } = plan.kind === 'join' ? plan.refusal : ({ acquired: false } as Refusal)
        return refusal
      }
      if (plan.kind === 'renew') {
        const renewed = await this.#renewPlace(key, owner, plan.wait, at, { whileRefused: false })
        if (!('item' in renewed)) return renewed
        current = renewed.item
      } else {
        try {
          await this.#client.send(new UpdateItemCommand({ ...this.#target(key), ...plan.update }))
          if (plan.kind === 'grant') this.#noteHeir(key, owner, current, at)
          return plan.kind === 'grant' ? { acquired: true, fencingToken: plan.token } : plan.refusal
        } catch (error) {
          const newer = conditionFailure(error)
          if (newer === undefined) throw this.#storageError(error, 'acquire', key)
          // Our own write, applied before the SDK retried it: the decision stands.
          if (newer[LAST_WRITE]?.S === plan.write) {
            if (plan.kind === 'grant') this.#noteHeir(key, owner, current, at)
            return plan.kind === 'grant' ? { acquired: true, fencingToken: this.#token(newer, key) } : plan.refusal
          }
          current = newer
        }
      }
      at = this.#clock()
    }
  }

  /** What `owner` gets from `item` at `now`, and the write that records it. */
  #plan(
    key: string,
    owner: string,
    ttl: number | null,
    wait: WaitOptions | undefined,
    item: Record<string, AttributeValue>,
    now: number,
  ): ContendedPlan {
    const stale = now - this.#allowance
    const holderExpiresAt = numberOf(item[EXPIRES_AT])
    const held = item[OWNER] !== undefined && (holderExpiresAt === undefined || holderExpiresAt > stale)
    const places = placesOf(item, key)
    // Dead places (lease over for `allowance` on our clock, the same rule as for a holder's lease) are
    // skipped, and dropped by the guarded writes below.
    const live = places.filter((place) => place.leaseEnd > stale)
    const dead = places.filter((place) => place.leaseEnd <= stale)
    const write = randomUUID()
    const guard = lastWriteGuard(item)
    const first = live[0]?.owner
    if (!held && (first === undefined || first === owner)) {
      const rest = live.filter((place) => place.owner !== owner)
      const token = this.#nextToken(item, key, now)
      const leaseEnd = ttl === null ? undefined : Math.min(now + ttl, LATEST_LEASE_END)
      const sets = ['#owner = :owner', '#write = :write', '#token = :token']
      const removes: string[] = []
      const placeNames: Record<string, string> = {}
      const values: Record<string, AttributeValue> = {
        ...guard.values,
        ':owner': { S: owner },
        ':write': { S: write },
        ':token': { N: String(token) },
      }
      removes.push('#handed')
      if (leaseEnd === undefined) {
        removes.push('#expiresAt', '#ttl')
      } else {
        sets.push('#expiresAt = :expiresAt', '#ttl = :ttl')
        values[':expiresAt'] = { N: String(leaseEnd) }
        values[':ttl'] = { N: String(this.#ttlSeconds(Math.max(leaseEnd, latestEnd(rest)))) }
      }
      if (rest.length === 0) {
        removes.push('#queue')
      } else {
        // Place by place, so that renewals of the others' places meanwhile are kept.
        const gone = places.filter((place) => place.owner === owner || place.leaseEnd <= stale)
        for (const [index, place] of gone.entries()) {
          placeNames[`#gone${index}`] = place.owner
          removes.push(`#queue.#gone${index}`)
        }
      }
      return {
        kind: 'grant',
        token,
        write,
        update: {
          UpdateExpression: `SET ${sets.join(', ')}${removes.length === 0 ? '' : ` REMOVE ${removes.join(', ')}`}`,
          ConditionExpression: guard.condition,
          ExpressionAttributeNames: {
            ...names('#owner', '#write', '#token', '#expiresAt', '#ttl', '#queue', '#handed'),
            ...placeNames,
          },
          ExpressionAttributeValues: values,
        },
      }
    }
    const refusal: Refusal = { acquired: false }
    if (held && holderExpiresAt !== undefined) refusal.expiresIn = Math.max(0, holderExpiresAt + this.#allowance - now)
    if (wait === undefined) return { kind: 'refuse', refusal }
    const placeEnd = this.#placeEnd(now, wait)
    // Our own place counts as ours only while our own clock says its lease has not ended; otherwise we
    // lost it and join again at the tail.
    const mine = live.find((place) => place.owner === owner && place.leaseEnd > now)
    const itemTtl = numberOf(item[TTL_ATTRIBUTE])
    // An item without TTL while held without expiry is never deleted; release then sets a TTL that
    // outlives every place (see MAX_PLACE_LEASE_MS).
    const neverDeleted = held && holderExpiresAt === undefined && itemTtl === undefined
    const covered = neverDeleted || (itemTtl !== undefined && itemTtl >= this.#coveringTtl(placeEnd))
    const others = live.filter((place) => place.owner !== owner)
    if (mine !== undefined && covered) {
      const before = others.filter((place) => place.order < mine.order)
      refusal.position = before.length
      refusal.ahead = before.at(-1)?.owner
      return { kind: 'renew', refusal, wait }
    }
    // Join at the tail (or renew a place whose TTL must be raised): one guarded write.
    const order = mine?.order ?? places.reduce((latest, place) => Math.max(latest, place.order), 0) + 1
    const after = [...others, { owner, order, leaseEnd: placeEnd }].sort((a, b) => a.order - b.order)
    refusal.position = after.findIndex((place) => place.owner === owner)
    refusal.ahead = after[refusal.position - 1]?.owner
    const sets = ['#write = :write']
    const removes: string[] = []
    const placeNames: Record<string, string> = { '#place': owner }
    const values: Record<string, AttributeValue> = {
      ...guard.values,
      ':write': { S: write },
      ':place': placeValue(order, placeEnd),
    }
    if (item[QUEUE] === undefined) {
      sets.push('#queue = :queue')
      values[':queue'] = { M: { [owner]: placeValue(order, placeEnd) } }
      delete values[':place']
      delete placeNames['#place']
    } else {
      sets.push('#queue.#place = :place')
      for (const [index, place] of dead.filter((place) => place.owner !== owner).entries()) {
        placeNames[`#gone${index}`] = place.owner
        removes.push(`#queue.#gone${index}`)
      }
    }
    if (!neverDeleted) {
      sets.push('#ttl = :ttl')
      values[':ttl'] = { N: String(Math.max(itemTtl ?? 0, this.#ttlSeconds(latestEnd(after)))) }
    }
    return {
      kind: 'join',
      refusal,
      write,
      update: {
        UpdateExpression: `SET ${sets.join(', ')}${removes.length === 0 ? '' : ` REMOVE ${removes.join(', ')}`}`,
        ConditionExpression: guard.condition,
        ExpressionAttributeNames: { ...names('#queue', '#write', ...(neverDeleted ? [] : (['#ttl'] as const))), ...placeNames },
        ExpressionAttributeValues: values,
      },
    }
  }

  /** The refusal `item` means for `owner` (a waiter with a place): the holder's remaining lease, its position. */
  #refusal(item: Record<string, AttributeValue>, owner: string, key: string, now: number): Refusal {
    const stale = now - this.#allowance
    const refusal: Refusal = { acquired: false }
    const holderExpiresAt = numberOf(item[EXPIRES_AT])
    if (item[OWNER] !== undefined && holderExpiresAt !== undefined && holderExpiresAt > stale) {
      refusal.expiresIn = Math.max(0, holderExpiresAt + this.#allowance - now)
    }
    const live = placesOf(item, key).filter((place) => place.leaseEnd > stale)
    const position = live.findIndex((place) => place.owner === owner)
    if (position !== -1) {
      refusal.position = position
      refusal.ahead = live[position - 1]?.owner
    }
    return refusal
  }

  /**
   * The grant `item` shows a release handed to `owner` (see `release`), while its claim window is open by
   * our own clock (no allowance, as a holder judges its own lease): answered at once, the ttl claimed in
   * the background. Undefined when the item shows no such grant.
   */
  #handedOver(
    key: string,
    owner: string,
    ttl: number | null,
    item: Record<string, AttributeValue>,
    now: number,
  ): AcquireResult | undefined {
    if (item[HANDED_TO]?.S !== owner || item[OWNER]?.S !== owner) return undefined
    const windowEnd = numberOf(item[EXPIRES_AT])
    if (windowEnd === undefined || windowEnd <= now) return undefined
    const token = this.#token(item, key)
    this.#noteHeir(key, owner, item, now)
    const claimed = this.#claims.schedule(key, owner, claimDelay(ttl, windowEnd - now), () => this.#claim(key, owner, ttl, token))
    // `Lock` always follows the claim; a caller of the store that does not must not crash the process.
    claimed.catch(() => {})
    return { acquired: true, fencingToken: token, handedOver: { lease: windowEnd - now, claimed } }
  }

  /** Remembers who waits first behind `owner`, granted on `item`: the one its release hands the lock to. */
  #noteHeir(key: string, owner: string, item: Record<string, AttributeValue>, now: number): void {
    const stale = now - this.#allowance
    const heir = placesOf(item, key).find((place) => place.owner !== owner && place.leaseEnd > stale)?.owner
    if (heir === undefined) this.#heirs.delete(key, owner)
    else this.#heirs.set(key, owner, heir)
  }

  /**
   * Turns a lock handed to `owner` with `token` into its own lease of `ttl`: one conditional write that
   * applies only while the grant is still that one (same owner and token) and not over. Whether it applied.
   */
  async #claim(key: string, owner: string, ttl: number | null, token: number): Promise<boolean> {
    const now = this.#clock()
    const write = randomUUID()
    try {
      await this.#client.send(
        new UpdateItemCommand({
          ...this.#target(key),
          UpdateExpression:
            ttl === null
              ? 'SET #write = :write REMOVE #expiresAt, #ttl, #handed'
              : 'SET #expiresAt = :expiresAt, #ttl = :ttl, #write = :write REMOVE #handed',
          // The same grant already claimed by an extend that overtook the claim still counts, and gets the
          // ttl again: the lease is then what the claim's answer tells Lock.
          ConditionExpression: '#owner = :owner AND #token = :token AND (attribute_not_exists(#expiresAt) OR #expiresAt > :now)',
          ExpressionAttributeNames: names('#owner', '#handed', '#token', '#expiresAt', '#ttl', '#write'),
          ExpressionAttributeValues: {
            ...ownedBy(owner, now),
            ':token': { N: String(token) },
            ':write': { S: write },
            ...(ttl === null ? {} : this.#leaseValues(now, ttl)),
          },
        }),
      )
      return true
    } catch (error) {
      const current = conditionFailure(error)
      if (current === undefined) throw this.#storageError(error, 'claim', key)
      // Our own earlier attempt of this very request applied before the SDK retried it.
      return current[LAST_WRITE]?.S === write
    }
  }

  /** Keeps track of the owners that have a place here, so that their next attempt starts with a renewal. */
  /** `writtenAt`: when (store clock) the call that gave `result` wrote the place, or the hint's own time if it only read. */
  #remember(key: string, owner: string, result: AcquireResult | Refusal, writtenAt: number): AcquireResult {
    if (result.acquired) {
      this.#waiting.delete(key, owner)
      return result
    }
    const { ahead, ...refusal } = result as Refusal
    if (refusal.position === undefined) this.#waiting.delete(key, owner)
    else this.#waiting.set(key, owner, { ahead, writtenAt })
    return refusal
  }

  /** When a place taken or renewed at `now` ends: the place lease, capped (see MAX_PLACE_LEASE_MS). */
  #placeEnd(now: number, wait: WaitOptions): number {
    return now + Math.min(wait.lease, MAX_PLACE_LEASE_MS)
  }

  /** The least TTL (epoch s) under which the item outlives a place ending at `placeEnd` for everyone. */
  #coveringTtl(placeEnd: number): number {
    return Math.ceil((placeEnd + this.#allowance) / 1000)
  }

  async release(key: string, owner: string): Promise<boolean> {
    validateKey(key)
    await this.#ready('release', key)
    const now = this.#clock()
    const heir = this.#heirs.get(key, owner)
    this.#heirs.delete(key, owner)
    // A claim not sent yet never will be: the release ends (or hands on) the grant as it stands.
    this.#claims.cancel(key, owner)
    if (heir !== undefined && heir !== owner) {
      const handed = await this.#handOver(key, owner, heir, now)
      if (handed !== undefined) return handed
    }
    const write = randomUUID()
    // The item (and so the fencing counter) stays; DynamoDB's TTL removes it once it has been unused a while.
    return this.#ownerWrite('release', key, {
      UpdateExpression: 'REMOVE #owner, #expiresAt, #handed SET #ttl = :ttl, #write = :write',
      ExpressionAttributeNames: names('#owner', '#expiresAt', '#ttl', '#write', '#handed'),
      ExpressionAttributeValues: {
        ...ownedBy(owner, now),
        ':ttl': { N: String(this.#ttlSeconds(now)) },
        ':write': { S: write },
      },
      write,
    })
  }

  /**
   * Releases by handing the lock to `heir`, the first live place behind `owner` when it was granted: one
   * conditional write that makes `heir` the owner with the next token and a lease that ends with its place
   * lease (the claim window: a dead heir holds up the others no longer than its place would have), and
   * takes its place out of the queue. It applies only while `owner` holds the lock and `heir`'s place is
   * still live by our clock: places only join behind it, and the dead ones before it never come back.
   * Undefined when it did not apply though `owner` still holds the lock (the heir left or its place ended):
   * the caller then releases plainly.
   */
  async #handOver(key: string, owner: string, heir: string, now: number): Promise<boolean | undefined> {
    const write = randomUUID()
    try {
      await this.#client.send(
        new UpdateItemCommand({
          ...this.#target(key),
          UpdateExpression: [
            'SET #owner = :heir, #handed = :heir, #expiresAt = #queue.#heir.#leaseEnd, #token = #token + :one,',
            '#ttl = :ttl, #write = :write REMOVE #queue.#heir',
          ].join(' '),
          ConditionExpression:
            '#owner = :owner AND (attribute_not_exists(#expiresAt) OR #expiresAt > :now) AND #queue.#heir.#leaseEnd > :now',
          ExpressionAttributeNames: {
            ...names('#owner', '#handed', '#expiresAt', '#queue', '#token', '#ttl', '#write'),
            '#heir': heir,
            '#leaseEnd': PLACE_LEASE_END,
          },
          ExpressionAttributeValues: {
            ...ownedBy(owner, now),
            ':heir': { S: heir },
            ':one': { N: '1' },
            ':ttl': { N: String(this.#ttlSeconds(now + MAX_PLACE_LEASE_MS)) },
            ':write': { S: write },
          },
        }),
      )
      return true
    } catch (error) {
      const current = conditionFailure(error)
      if (current === undefined) throw this.#storageError(error, 'release', key)
      if (current[LAST_WRITE]?.S === write) return true
      const expiresAt = numberOf(current[EXPIRES_AT])
      const ours = current[OWNER]?.S === owner && (expiresAt === undefined || expiresAt > now)
      return ours ? undefined : false
    }
  }

  async extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    validateKey(key)
    await this.#ready('extend', key)
    const now = this.#clock()
    const write = randomUUID()
    return this.#ownerWrite('extend', key, {
      UpdateExpression:
        ttl === null
          ? 'SET #write = :write REMOVE #expiresAt, #ttl, #handed'
          : 'SET #expiresAt = :expiresAt, #ttl = :ttl, #write = :write REMOVE #handed',
      ExpressionAttributeNames: names('#owner', '#expiresAt', '#ttl', '#write', '#handed'),
      ExpressionAttributeValues: {
        ...ownedBy(owner, now),
        ':write': { S: write },
        ...(ttl === null ? {} : this.#leaseValues(now, ttl)),
      },
      write,
    })
  }

  async forceRelease(key: string): Promise<void> {
    validateKey(key)
    await this.#ready('force release', key)
    const now = this.#clock()
    try {
      await this.#client.send(
        new UpdateItemCommand({
          ...this.#target(key),
          UpdateExpression: 'REMOVE #owner, #expiresAt, #handed SET #ttl = :ttl, #write = :write',
          // Never create an item for a key nobody ever locked.
          ConditionExpression: 'attribute_exists(#key)',
          ExpressionAttributeNames: names('#key', '#owner', '#expiresAt', '#ttl', '#write', '#handed'),
          ExpressionAttributeValues: { ':ttl': { N: String(this.#ttlSeconds(now)) }, ':write': { S: randomUUID() } },
        }),
      )
    } catch (error) {
      if (conditionFailure(error) === undefined) throw this.#storageError(error, 'force release', key)
    }
  }

  /**
   * Removes `owner`'s place, in one conditional write that changes nothing when it has none; when it has
   * none because a release handed it the lock, a second write gives that grant back. Nothing is announced:
   * this store has no notifications, and the next waiter finds itself first on its next poll.
   */
  async leaveQueue(key: string, owner: string): Promise<void> {
    validateKey(key)
    await this.#ready('leave queue', key)
    this.#waiting.delete(key, owner)
    let current: Record<string, AttributeValue> | undefined
    try {
      await this.#client.send(
        new UpdateItemCommand({
          ...this.#target(key),
          // A new write id: a grant or join decided on the queue with this place in it is decided again.
          UpdateExpression: 'REMOVE #queue.#place SET #write = :write',
          ConditionExpression: 'attribute_exists(#queue.#place)',
          ExpressionAttributeNames: { ...names('#queue', '#write'), '#place': owner },
          ExpressionAttributeValues: { ':write': { S: randomUUID() } },
        }),
      )
      return
    } catch (error) {
      current = conditionFailure(error)
      if (current === undefined) throw this.#storageError(error, 'leave queue', key)
    }
    // No place: a release may have handed the lock to this waiter (taking its place), and it never saw it.
    if (current[HANDED_TO]?.S !== owner) return
    try {
      await this.#client.send(
        new UpdateItemCommand({
          ...this.#target(key),
          UpdateExpression: 'REMOVE #owner, #expiresAt, #handed SET #ttl = :ttl, #write = :write',
          ConditionExpression: '#owner = :owner AND #handed = :owner',
          ExpressionAttributeNames: names('#owner', '#expiresAt', '#handed', '#ttl', '#write'),
          ExpressionAttributeValues: {
            ':owner': { S: owner },
            ':ttl': { N: String(this.#ttlSeconds(this.#clock())) },
            ':write': { S: randomUUID() },
          },
        }),
      )
    } catch (error) {
      if (conditionFailure(error) === undefined) throw this.#storageError(error, 'leave queue', key)
    }
  }

  async isLocked(key: string): Promise<boolean> {
    validateKey(key)
    await this.#ready('check', key)
    let item: Record<string, AttributeValue> | undefined
    try {
      const output = await this.#client.send(
        new GetItemCommand({
          TableName: this.#table,
          Key: { [KEY_ATTRIBUTE]: { S: key } },
          ConsistentRead: true,
          ProjectionExpression: '#owner, #expiresAt',
          ExpressionAttributeNames: names('#owner', '#expiresAt'),
        }),
      )
      item = output.Item
    } catch (error) {
      throw this.#storageError(error, 'check', key)
    }
    if (item?.[OWNER] === undefined) return false
    const expiresAt = numberOf(item[EXPIRES_AT])
    // Locked exactly as long as `acquire` by someone else would be refused.
    return expiresAt === undefined || expiresAt > this.#clock() - this.#allowance
  }

  /**
   * Release/extend: one UpdateItem that only applies while `owner` holds an unexpired lease. The owner
   * judges its own lease by its own clock with no allowance, so it never outlives what others wait for.
   */
  async #ownerWrite(
    operation: string,
    key: string,
    input: Pick<UpdateItemCommandInput, 'UpdateExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'> & {
      write: string
    },
  ): Promise<boolean> {
    const { write, ...update } = input
    try {
      await this.#client.send(
        new UpdateItemCommand({
          ...this.#target(key),
          ...update,
          ConditionExpression: '#owner = :owner AND (attribute_not_exists(#expiresAt) OR #expiresAt > :now)',
        }),
      )
      return true
    } catch (error) {
      const current = conditionFailure(error)
      if (current === undefined) throw this.#storageError(error, operation, key)
      // Our own earlier attempt of this very request succeeded before the SDK retried it.
      return current[LAST_WRITE]?.S === write
    }
  }

  #target(key: string) {
    return {
      TableName: this.#table,
      Key: { [KEY_ATTRIBUTE]: { S: key } },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    }
  }

  /**
   * Where the fencing counter restarts when the item is missing: our clock in microseconds. Items are
   * only deleted `ITEM_RETENTION_MS` after their last use, and DynamoDB cannot write one item a million
   * times a second, so every earlier token is below this unless clocks disagree by about that margin.
   * Safe integers hold it until the year 2255.
   */
  #tokenFloor(now: number): number {
    return Math.floor(now) * 1000
  }

  /** The token a contended grant writes: one past the item's counter, or past the floor if it has none. */
  #nextToken(item: Record<string, AttributeValue>, key: string, now: number): number {
    if (item[FENCING_TOKEN] === undefined) return this.#tokenFloor(now) + 1
    return this.#token(item, key) + 1
  }

  /** `:expiresAt` and `:ttl` of a lease of `ttl` ms from `now`, as exact integers. */
  #leaseValues(now: number, ttl: number): Record<string, AttributeValue> {
    const leaseEnd = Math.min(now + ttl, LATEST_LEASE_END)
    return { ':expiresAt': { N: String(leaseEnd) }, ':ttl': { N: String(this.#ttlSeconds(leaseEnd)) } }
  }

  /** The TTL attribute: DynamoDB may delete the item this long after the lease (or the last use) ended. */
  #ttlSeconds(leaseEnd: number): number {
    return Math.ceil((leaseEnd + this.#allowance + ITEM_RETENTION_MS) / 1000)
  }

  #token(item: Record<string, AttributeValue> | undefined, key: string): number {
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

  /** Creates/checks the table once per store; a failed attempt is forgotten so the next operation retries. */
  async #ready(operation: string, key: string): Promise<void> {
    if (!this.#autoCreateTable) return
    if (this.#tableReady === undefined) {
      const attempt = ensureTable(this.#client, this.#table, { activeTimeout: this.#tableActiveTimeout })
      this.#tableReady = attempt
      attempt.catch(() => {
        if (this.#tableReady === attempt) this.#tableReady = undefined
      })
    }
    try {
      await this.#tableReady
    } catch (error) {
      throw this.#storageError(error, operation, key, `could not prepare table "${this.#table}"`)
    }
  }

  #storageError(error: unknown, operation: string, key: string, context?: string): errors.VerrouError {
    if (error instanceof errors.VerrouError) return error
    const name = errorName(error) ?? 'Error'
    const message = error instanceof Error ? error.message : String(error)
    let hint = ''
    if (name === 'ResourceNotFoundException') {
      if (this.#autoCreateTable) {
        // The table went away after it was checked (deleted, or a fresh DynamoDB Local): check and create
        // it again on the next call instead of failing for the rest of the process's life.
        this.#tableReady = undefined
        hint = ` (table "${this.#table}" is gone; it is created again on the next call)`
      } else {
        hint = ` (does table "${this.#table}" exist? Create it as the README shows, or set autoCreateTable: true)`
      }
    }
    const detail = `${context === undefined ? '' : `${context}: `}${name}: ${message}${hint}`
    return errors.E_LOCK_STORAGE_ERROR.from(error, { operation, key, store: STORE_NAME, detail })
  }
}

/** Creates a DynamoDB lock store. */
export function dynamodbStore(options: DynamoDBStoreOptions): DynamoDBStore {
  return new DynamoDBStore(options)
}

/** One waiter's place, as read from the item. */
interface Place {
  owner: string
  order: number
  leaseEnd: number
}

/** A refusal; `ahead` (internal, never returned) is the owner of the live place just before ours. */
type Refusal = { acquired: false; expiresIn?: number; position?: number; ahead?: string | undefined }
type GuardedUpdate = Omit<UpdateItemCommandInput, 'TableName' | 'Key'>

/**
 * A contended acquire's decision: refuse without writing, renew our place in place, or a write guarded by
 * the item's write id (grant, or join).
 */
type ContendedPlan =
  | { kind: 'refuse'; refusal: Refusal }
  | { kind: 'renew'; refusal: Refusal; wait: WaitOptions }
  | { kind: 'grant'; token: number; write: string; update: GuardedUpdate }
  | { kind: 'join'; refusal: Refusal; write: string; update: GuardedUpdate }

/** The item's places in FIFO order. A malformed queue is a storage error, never an empty queue. */
function placesOf(item: Record<string, AttributeValue>, key: string): Place[] {
  const queue = item[QUEUE]
  if (queue === undefined) return []
  if (queue.M === undefined) throw malformedQueue(queue, key)
  const places: Place[] = []
  for (const [owner, value] of Object.entries(queue.M)) {
    const order = numberOf(value.M?.[PLACE_ORDER])
    const leaseEnd = numberOf(value.M?.[PLACE_LEASE_END])
    if (order === undefined || leaseEnd === undefined) throw malformedQueue(queue, key)
    places.push({ owner, order, leaseEnd })
  }
  return places.sort((a, b) => a.order - b.order)
}

function malformedQueue(queue: AttributeValue, key: string): errors.VerrouError {
  return errors.E_LOCK_STORAGE_ERROR.from(queue, {
    operation: 'acquire',
    key,
    store: STORE_NAME,
    detail: `the item's "${QUEUE}" attribute is not a map of places`,
  })
}

function placeValue(order: number, leaseEnd: number): AttributeValue {
  return { M: { [PLACE_ORDER]: { N: String(order) }, [PLACE_LEASE_END]: { N: String(leaseEnd) } } }
}

/** The latest place lease end, or 0 with no place. */
function latestEnd(places: Place[]): number {
  return places.reduce((latest, place) => Math.max(latest, place.leaseEnd), 0)
}

function ownedBy(owner: string, now: number): Record<string, AttributeValue> {
  return { ':owner': { S: owner }, ':now': { N: String(now) } }
}

function names(...placeholders: (keyof typeof NAMES)[]): Record<string, string> {
  const used: Record<string, string> = {}
  for (const placeholder of placeholders) used[placeholder] = NAMES[placeholder]
  return used
}

function validateKey(key: string): void {
  if (key.length * 3 > MAX_KEY_BYTES && utf8Length(key) > MAX_KEY_BYTES) {
    throw new errors.E_INVALID_ARGUMENT(`A DynamoDB lock key must be at most ${MAX_KEY_BYTES} bytes of UTF-8`)
  }
  // Reserved for the items of semaphores and read-write locks, so that a mutex never lands on one.
  if (key.startsWith(SHARED_KEY_PREFIX)) {
    throw new errors.E_INVALID_ARGUMENT('A DynamoDB lock key must not start with "\\u0000verrou:shared\\u0000" (reserved)')
  }
}

function nonNegative(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new errors.E_INVALID_ARGUMENT(`${what} must be a finite number of milliseconds, 0 or more, got ${String(value)}`)
  }
  return value
}
