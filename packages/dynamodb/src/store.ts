import { randomUUID } from 'node:crypto'
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb'
import { type AcquireResult, errors, type LockStore } from '@verrou/core'
import { ensureTable, errorName, KEY_ATTRIBUTE, TTL_ATTRIBUTE, validateTableName } from './table.js'

/** How this store's errors name it. */
const STORE_NAME = 'DynamoDB lock store'

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
const FENCING_TOKEN = 'fencingToken'
/** Random id of the last write: recognises our own write when the SDK retried a request that had succeeded. */
const LAST_WRITE = 'lastWrite'

/**
 * How long an item stays after its lease ends before DynamoDB's TTL may delete it. The fencing counter
 * lives on the item, so a deleted item restarts it from a clock-based floor (see `#tokenFloor`); this
 * margin is what keeps that floor above every earlier token even when clocks disagree by minutes.
 */
const ITEM_RETENTION_MS = 60 * 60 * 1000
/**
 * The latest lease end the store writes, epoch ms: a lease past it (the contract accepts ttls up to 2^53-1
 * ms, so now + ttl can exceed what a double holds exactly) ends here instead, in the year 287,396.
 */
export const LATEST_LEASE_END = Number.MAX_SAFE_INTEGER
/** DynamoDB allows partition key values up to 2048 bytes of UTF-8. */
const MAX_KEY_BYTES = 2048

const NAMES = {
  '#key': KEY_ATTRIBUTE,
  '#owner': OWNER,
  '#expiresAt': EXPIRES_AT,
  '#token': FENCING_TOKEN,
  '#ttl': TTL_ATTRIBUTE,
  '#write': LAST_WRITE,
}

/**
 * Locks in a DynamoDB table, one item per key. Every operation is a single conditional UpdateItem or a
 * strongly consistent GetItem. DynamoDB has no clock usable in conditions, so leases are epoch-ms times
 * written by clients and compared against the caller's clock, with `clockSkewAllowance` of slack before
 * anyone takes over a lease.
 */
export class DynamoDBStore implements LockStore {
  readonly #client: DynamoDBClient
  readonly #table: string
  readonly #autoCreateTable: boolean
  readonly #allowance: number
  readonly #clock: () => number
  readonly #tableActiveTimeout: number
  #tableReady: Promise<void> | undefined

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
  }

  /** The table this store writes to. */
  get tableName(): string {
    return this.#table
  }

  async acquire(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    validateKey(key)
    await this.#ready('acquire', key)
    const now = this.#clock()
    const write = randomUUID()
    const take = 'SET #owner = :owner, #write = :write, #token = if_not_exists(#token, :floor) + :one'
    try {
      const output = await this.#client.send(
        new UpdateItemCommand({
          ...this.#target(key),
          // The fencing token is bumped in the same write that takes the lock; a missing counter (new key, or
          // an item DynamoDB's TTL deleted) starts from the clock-based floor.
          UpdateExpression: ttl === null ? `${take} REMOVE #expiresAt, #ttl` : `${take}, #expiresAt = :expiresAt, #ttl = :ttl`,
          // Free: nobody holds it, or the holder's lease ended at least `allowance` ago on our clock. A lease
          // without expiry has no #expiresAt, so the comparison is false and it stays held.
          ConditionExpression: 'attribute_not_exists(#owner) OR #expiresAt <= :stale',
          ExpressionAttributeNames: names('#owner', '#write', '#token', '#expiresAt', '#ttl'),
          ExpressionAttributeValues: {
            ':owner': { S: owner },
            ':write': { S: write },
            ':floor': { N: String(this.#tokenFloor(now)) },
            ':one': { N: '1' },
            ':stale': { N: String(now - this.#allowance) },
            ...(ttl === null ? {} : this.#leaseValues(now, ttl)),
          },
          ReturnValues: 'UPDATED_NEW',
        }),
      )
      return { acquired: true, fencingToken: this.#token(output.Attributes, key) }
    } catch (error) {
      const held = conditionFailure(error)
      if (held === undefined) throw this.#storageError(error, 'acquire', key)
      // The SDK retried a request whose first attempt succeeded but whose reply was lost: the lock is ours.
      if (held[LAST_WRITE]?.S === write) return { acquired: true, fencingToken: this.#token(held, key) }
      const expiresAt = numberOf(held[EXPIRES_AT])
      return expiresAt === undefined
        ? { acquired: false }
        : { acquired: false, expiresIn: Math.max(0, expiresAt + this.#allowance - now) }
    }
  }

  async release(key: string, owner: string): Promise<boolean> {
    validateKey(key)
    await this.#ready('release', key)
    const now = this.#clock()
    const write = randomUUID()
    // The item (and so the fencing counter) stays; DynamoDB's TTL removes it once it has been unused a while.
    return this.#ownerWrite('release', key, {
      UpdateExpression: 'REMOVE #owner, #expiresAt SET #ttl = :ttl, #write = :write',
      ExpressionAttributeNames: names('#owner', '#expiresAt', '#ttl', '#write'),
      ExpressionAttributeValues: {
        ...ownedBy(owner, now),
        ':ttl': { N: String(this.#ttlSeconds(now)) },
        ':write': { S: write },
      },
      write,
    })
  }

  async extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    validateKey(key)
    await this.#ready('extend', key)
    const now = this.#clock()
    const write = randomUUID()
    return this.#ownerWrite('extend', key, {
      UpdateExpression:
        ttl === null
          ? 'SET #write = :write REMOVE #expiresAt, #ttl'
          : 'SET #expiresAt = :expiresAt, #ttl = :ttl, #write = :write',
      ExpressionAttributeNames: names('#owner', '#expiresAt', '#ttl', '#write'),
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
          UpdateExpression: 'REMOVE #owner, #expiresAt SET #ttl = :ttl, #write = :write',
          // Never create an item for a key nobody ever locked.
          ConditionExpression: 'attribute_exists(#key)',
          ExpressionAttributeNames: names('#key', '#owner', '#expiresAt', '#ttl', '#write'),
          ExpressionAttributeValues: { ':ttl': { N: String(this.#ttlSeconds(now)) }, ':write': { S: randomUUID() } },
        }),
      )
    } catch (error) {
      if (conditionFailure(error) === undefined) throw this.#storageError(error, 'force release', key)
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

/**
 * The item as it was when a condition failed (`{}` if there was none), or `undefined` when `error` is not
 * a failed condition. Only ConditionalCheckFailedException means "held by someone else" / "not owned".
 */
function conditionFailure(error: unknown): Record<string, AttributeValue> | undefined {
  if (errorName(error) !== 'ConditionalCheckFailedException') return undefined
  const item = (error as { Item?: Record<string, AttributeValue> }).Item
  return item ?? {}
}

function ownedBy(owner: string, now: number): Record<string, AttributeValue> {
  return { ':owner': { S: owner }, ':now': { N: String(now) } }
}

function names(...placeholders: (keyof typeof NAMES)[]): Record<string, string> {
  const used: Record<string, string> = {}
  for (const placeholder of placeholders) used[placeholder] = NAMES[placeholder]
  return used
}

function numberOf(value: AttributeValue | undefined): number | undefined {
  if (value?.N === undefined) return undefined
  const parsed = Number(value.N)
  return Number.isFinite(parsed) ? parsed : undefined
}

function validateKey(key: string): void {
  if (key.length * 3 > MAX_KEY_BYTES && utf8Length(key) > MAX_KEY_BYTES) {
    throw new errors.E_INVALID_ARGUMENT(`A DynamoDB lock key must be at most ${MAX_KEY_BYTES} bytes of UTF-8`)
  }
}

/** UTF-8 length without allocating: a lone surrogate counts as 3 bytes, like the replacement character. */
function utf8Length(text: string): number {
  let bytes = 0
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && index + 1 < text.length) {
      const next = text.charCodeAt(index + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4
        index++
      } else bytes += 3
    } else bytes += 3
  }
  return bytes
}

function nonNegative(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new errors.E_INVALID_ARGUMENT(`${what} must be a finite number of milliseconds, 0 or more, got ${String(value)}`)
  }
  return value
}
