import { createHash } from 'node:crypto'
import { ddlLockKeys, pruneLockKeys, type TableNames } from './table_name.js'

/**
 * Every statement the store sends, built once per store from validated, quoted names. Values are always
 * parameters. Conventions: $1 key bytes, $2 owner bytes, $3 ttl in ms (NULL: never expires).
 *
 * A row is held while `owner IS NOT NULL` and `expires_at` is NULL (no expiry) or still ahead of the
 * server's clock (clock_timestamp(), not now(): that is frozen at the start of the transaction). Released
 * rows stay, owner NULL and expires_at set to the release time, until housekeeping deletes them. Tokens
 * come from a per-table sequence, so deleting a row never resets a key's counter.
 *
 * The wait queue lives in the lock's own row: `waiters` holds the owners in arrival order,
 * `waiter_leases` the end of each one's place lease and `waiter_inboxes` the NOTIFY channel its store
 * listens on ('' for none: it is then told on the table's channel, which every listening store hears).
 * The three arrays are kept aligned by every write. A place is live while its lease end is ahead of the
 * clock; dead places are skipped by every read and dropped by the next acquire that writes the row. As the
 * queue shares the row, every decision is taken under that row's lock, on its latest version.
 *
 * Acquire and leaveQueue read the clock once (the `clock` CTE, which PostgreSQL materialises because
 * clock_timestamp() is volatile), so that the parts of one decision never see two different "nows".
 *
 * The lock operations are {@link HotStatement}s: sent as named prepared statements, each is parsed and
 * analysed once per session instead of on every call. DDL and housekeeping are rare and stay unnamed.
 */
export interface Statements {
  createTable: string
  tableExists: string
  upgradeCheck: string
  upgradeTable: string
  acquire: HotStatement
  acquireWaiting: HotStatement
  acquireFree: HotStatement
  release: HotStatement
  releaseUnqueued: HotStatement
  claim: HotStatement
  redraw: HotStatement
  extend: HotStatement
  forceRelease: HotStatement
  isLocked: HotStatement
  leaveQueue: HotStatement
  prune: string
}

/**
 * A lock operation's statement and the name it is prepared under. Prepared statements live per session and
 * pg refuses to reuse a name for another text, so the name is derived from the text itself (which holds
 * the quoted table and sequence): stores of the same table share a statement, stores of different tables
 * never clash. `verrou_force_release_` plus 16 hex digits is 37 bytes, well within the 63 of an identifier.
 */
export interface HotStatement {
  readonly name: string
  readonly text: string
}

/** The columns the wait queue needs; a table created by an earlier release lacks them. */
export const QUEUE_COLUMNS = ['waiters', 'waiter_leases', 'waiter_inboxes'] as const

/**
 * Owners up to this many bytes are named in a notification as their hex; longer ones as their hash, which
 * the listener cannot turn back into a name (it then wakes its waiters without naming one). Keeps the
 * payload under NOTIFY's 8000 bytes whatever the key.
 */
export const MAX_NAMED_OWNER_BYTES = 3000

/**
 * Inboxes of stores that can take a lock handed over by a release begin with this. A release hands the lock
 * only to a waiter whose place names such an inbox; a waiter of a store without it (an earlier release of
 * this package, still running beside this one) is announced instead, and claims the lock with an acquire.
 */
export const HEIR_INBOX_PREFIX = 'verrou_heir_'

/**
 * Put before the heir's inbox in its place while a lock handed to it is not claimed: the mark that tells
 * that grant from a holder that also queued (an inbox never begins with it).
 */
const HANDED_MARK = '>'

/**
 * Whether `row`'s place at `index` is marked as an heir's. It stands for a grant not claimed yet only while
 * that place is live: an heir that released before claiming leaves its place dead, mark and all, until the
 * next acquire that writes the row drops it.
 */
const isHanded = (row: string, index: string) => `left(${row}.waiter_inboxes[${index}], 1) = '${HANDED_MARK}'`

/** A place's lease end as the text a hand-over names it by: the same whatever the session's time zone. */
const placeMark = (leaseEnd: string) => `to_char(${leaseEnd} AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS')`

function hot(operation: string, text: string): HotStatement {
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 16)
  return { name: `verrou_${operation}_${digest}`, text }
}

/** The places of the queue in `row`, in order: columns `waiter`, `lease_end`, `pos`. */
const places = (row: string) => `unnest(${row}.waiter_leases) WITH ORDINALITY AS place(lease_end, pos)`

/** The owner of `place`, the place being scanned in `row`. */
const waiterOf = (row: string) => `${row}.waiters[place.pos]`

/** `what` (an expression of the place) for the first live place of `row` at `now`, or NULL. */
const ofFirstLive = (what: string, row: string, now: string) =>
  `(SELECT ${what} FROM ${places(row)} WHERE place.lease_end > ${now} ORDER BY place.pos LIMIT 1)`

/** The owner of the first live place of `row` at `now`, or NULL. */
const firstLive = (row: string, now: string) => ofFirstLive(waiterOf(row), row, now)

/**
 * RETURNING columns `next` (the first live waiter at `now`, if any) and `inbox` (its inbox; '' or NULL:
 * none), read only when the queue is not empty (`when`).
 */
const nextAndInbox = (row: string, now: string, when = `cardinality(${row}.waiters) > 0`) =>
  `CASE WHEN ${when} THEN ${firstLive(row, now)} END AS next,
    CASE WHEN ${when} THEN ${ofFirstLive(`ltrim(${row}.waiter_inboxes[place.pos], '${HANDED_MARK}')`, row, now)} END AS inbox`

/**
 * pg_notify naming `next` on its inbox, or on `channel` (the table's) when it has none. Sent only when a
 * live waiter exists: nothing is sent when nobody waits.
 */
const notifyNext = (channel: string, keyPayload: string) =>
  `SELECT CASE WHEN next IS NOT NULL THEN ${notifyNamed(channel, keyPayload)} END AS announced`

/** The pg_notify naming `next` on its `inbox` (or on `channel`), for the columns of nextAndInbox. */
const notifyNamed = (channel: string, keyPayload: string) =>
  `pg_notify(coalesce(nullif(inbox, ''), ${channel}::text), ${announcement(keyPayload, 'next')})`

/**
 * The NOTIFY payload naming `next`: the key's payload ($n), a newline (never part of a key's payload) and
 * `x:` with the owner's bytes in hex, or `h:` with their SHA-256 for a very long owner. Hex keeps it valid
 * in any server encoding.
 */
const announcement = (keyPayload: string, next: string) =>
  `${keyPayload}::text || chr(10) || CASE WHEN octet_length(${next}) <= ${MAX_NAMED_OWNER_BYTES}
    THEN 'x:' || encode(${next}, 'hex') ELSE 'h:' || encode(sha256(${next}), 'hex') END`

/**
 * When `condition` holds, turns `synchronous_commit` off for the statement's own transaction (set_config's
 * `true`: local to it, the session keeps its setting). Used for refusals only: a refusal that wrote the row
 * only joined, renewed or tidied the queue, and with waiters joining right after each release, that write
 * held the row lock through a WAL flush (about 2 ms) that the head's claim then waited out on every
 * hand-over. A crash can lose such a write only together with everything after it (WAL is replayed in
 * order, and any later grant or release flushes it), and costs at most a place, which its waiter renews.
 * Grants and tokens keep the session's setting (releases: see releasedNow). The caller passes `false`
 * unless the statement is surely a transaction of its own (a pool's), so that a user's transaction is
 * never relaxed.
 */
const relaxedRefusal = (condition: string) => `CASE WHEN ${condition} THEN set_config('synchronous_commit', 'off', true) END`

/**
 * The end of a released lease: the statement's clock. Computing it also turns `synchronous_commit` off for
 * the release's own transaction when `relax` holds and the lease had an end (the old row's expires_at,
 * which only SET can read). Such a release may skip the WAL flush: a crash can undo it only together with
 * everything after it (WAL is replayed in order, and any later grant flushes it), so at worst the lock
 * goes back to its releaser until that lease ends, as if the holder had died; never to a second holder.
 * A lease that never expires would then be held for good, so its release waits for the flush. CASE tries
 * its branches in order: set_config runs only when both hold.
 */
const releasedNow = (row: string, relax: string) => `CASE
    WHEN ${row}.expires_at IS NULL OR NOT ${relax}::boolean THEN clock_timestamp()
    WHEN set_config('synchronous_commit', 'off', true) IS NOT NULL THEN clock_timestamp()
    ELSE clock_timestamp()
  END`

/** `array` (one of the queue's columns) without $2's place. */
const withoutPlace = (array: string) =>
  `${array}[:array_position(held.waiters, $2::bytea) - 1] || ${array}[array_position(held.waiters, $2::bytea) + 1:]`

/** $1 grace in ms: the row's lease and every place in its queue ended more than that ago. */
const prunable = `held.expires_at < clock_timestamp() - $1::float8 * interval '1 millisecond'
    AND NOT EXISTS (SELECT 1 FROM unnest(held.waiter_leases) AS place(lease_end)
      WHERE place.lease_end >= clock_timestamp() - $1::float8 * interval '1 millisecond')`

/**
 * Everything acquire decides about `row`, from one pass over its queue, at the statement's clock: `at`,
 * the live places in order (`live`, `live_leases`, `live_inboxes`: dead ones dropped), `mine` ($2's 1-based
 * index among them, or NULL) and `granted` (the lock is free and no live place is ahead of $2).
 */
const decisionFor = (row: string) => `SELECT queue.*, array_position(queue.live, $2::bytea) AS mine,
    (queue.free AND coalesce(queue.live[1] = $2::bytea, true)) OR queue.handed AS granted
  FROM (
    -- An empty queue, the uncontended case, is not scanned. ORDER BY the ordinality needs no sort.
    SELECT clock.at, ${row}.owner IS NULL OR ${row}.expires_at <= clock.at AS free,
      -- Handed to $2 by a release and not claimed yet (see claim): this acquire claims it.
      (cardinality(${row}.waiters) > 0 AND ${row}.owner = $2::bytea AND ${row}.expires_at > clock.at
        AND ${isHanded(row, `array_position(${row}.waiters, $2::bytea)`)}
        AND ${row}.waiter_leases[array_position(${row}.waiters, $2::bytea)] > clock.at) IS TRUE AS handed,
      CASE WHEN cardinality(${row}.waiters) = 0 THEN ${row}.waiters ELSE ARRAY(
        SELECT ${waiterOf(row)} FROM ${places(row)} WHERE place.lease_end > clock.at ORDER BY place.pos
      ) END AS live,
      CASE WHEN cardinality(${row}.waiters) = 0 THEN ${row}.waiter_leases ELSE ARRAY(
        SELECT place.lease_end FROM ${places(row)} WHERE place.lease_end > clock.at ORDER BY place.pos
      ) END AS live_leases,
      -- A place written by a store that kept no inbox (an array shorter than the queue) reads as ''.
      CASE WHEN cardinality(${row}.waiters) = 0 THEN '{}'::text[] ELSE ARRAY(
        SELECT coalesce(${row}.waiter_inboxes[place.pos], '') FROM ${places(row)} WHERE place.lease_end > clock.at ORDER BY place.pos
      ) END AS live_inboxes
    FROM clock
    OFFSET 0
  ) AS queue`

export function buildStatements(names: TableNames): Statements {
  const { table, sequence, pruneMark } = names
  const keyMatches = 'held.key_hash = sha256($1::bytea)'
  const ms = (value: string) => `${value}::float8 * interval '1 millisecond'`
  const nextToken = `nextval('${sequence}'::regclass)`
  const heldAt = (now: string) => `held.owner IS NOT NULL AND (held.expires_at IS NULL OR held.expires_at > ${now})`
  // A live place of $2 in the row.
  const hasLivePlace = `(cardinality(held.waiters) > 0
      AND EXISTS (SELECT 1 FROM ${places('held')} WHERE ${waiterOf('held')} = $2::bytea AND place.lease_end > clock.at))`
  const placeLeaseEnd = `decision.at + ${ms('$4')}`
  // Handed to $2 by a release, not claimed yet: $2 holds it and still has its place (see release).
  const handedTo2 = `(held.owner = $2::bytea AND held.expires_at > clock.at
      AND ${isHanded('held', 'array_position(held.waiters, $2::bytea)')}
      AND held.waiter_leases[array_position(held.waiters, $2::bytea)] > clock.at) IS TRUE`

  // The fragments only a caller that will not wait sends (acquire; see its comment): the holder snapshot,
  // the insert skipped when it refuses, the conflict written only when the lock is free, and the refusal
  // read from the snapshot.
  const holderSnapshot = `holder AS (
  SELECT CASE WHEN held.owner IS NOT NULL AND held.expires_at > clock.at THEN held.expires_at - clock.at END AS remaining
  FROM ${table} AS held, clock
  WHERE ${keyMatches} AND $4::float8 IS NULL
    AND (${heldAt('clock.at')} OR (held.waiter_leases[1] > clock.at AND held.waiters[1] <> $2::bytea))
), `
  const unlessHeld = `  WHERE NOT EXISTS (SELECT 1 FROM holder)
`
  const onlyFreeWritten = `    -- Without a place lease, only a free lock is worth writing; the SET decides whether it is granted.
    WHERE $4::float8 IS NOT NULL OR held.owner IS NULL OR held.expires_at <= (SELECT clock.at FROM clock)
`
  const refusedOnSnapshot = `
UNION ALL
SELECT NULL, CASE WHEN remaining IS NOT NULL THEN GREATEST(ceil(extract(epoch FROM remaining) * 1000), 1) END::float8, NULL, NULL, NULL, NULL
FROM holder
WHERE NOT EXISTS (SELECT 1 FROM acquired)`
  const acquireSql = (waiting: boolean) => `WITH clock AS (SELECT clock_timestamp() AS at),
${waiting ? '' : holderSnapshot}acquired AS (
  INSERT INTO ${table} AS held (key_hash, key, owner, expires_at, fencing_token)
  SELECT sha256($1::bytea), $1::bytea, $2::bytea, clock.at + ${ms('$3')}, ${nextToken} FROM clock
${waiting ? '' : unlessHeld}  ON CONFLICT (key_hash) DO UPDATE
    SET (owner, expires_at, fencing_token, waiters, waiter_leases, waiter_inboxes) = (
      SELECT
        -- A lease that ended belongs to nobody: writing so makes a refusal never look like a grant below.
        CASE WHEN decision.granted THEN $2::bytea WHEN decision.free THEN NULL ELSE held.owner END,
        CASE WHEN decision.granted THEN decision.at + ${ms('$3')} ELSE held.expires_at END,
        CASE WHEN decision.granted AND NOT decision.handed THEN ${nextToken} ELSE held.fencing_token END,
        CASE
          WHEN decision.granted THEN array_remove(decision.live, $2::bytea)
          WHEN decision.mine IS NULL AND $4::float8 IS NOT NULL THEN decision.live || $2::bytea
          ELSE decision.live
        END,
        CASE
          WHEN decision.granted AND decision.mine IS NOT NULL
            THEN decision.live_leases[:decision.mine - 1] || decision.live_leases[decision.mine + 1:]
          WHEN decision.granted OR $4::float8 IS NULL THEN decision.live_leases
          WHEN decision.mine IS NULL THEN decision.live_leases || ${placeLeaseEnd}
          -- A waiter keeps its place, renewed.
          ELSE decision.live_leases[:decision.mine - 1] || ${placeLeaseEnd} || decision.live_leases[decision.mine + 1:]
        END,
        CASE
          WHEN decision.granted AND decision.mine IS NOT NULL
            THEN decision.live_inboxes[:decision.mine - 1] || decision.live_inboxes[decision.mine + 1:]
          WHEN decision.granted OR $4::float8 IS NULL THEN decision.live_inboxes
          WHEN decision.mine IS NULL THEN decision.live_inboxes || $6::text
          ELSE decision.live_inboxes[:decision.mine - 1] || $6::text || decision.live_inboxes[decision.mine + 1:]
        END
      FROM (${decisionFor('held')} OFFSET 0) AS decision
    )
${waiting ? '' : onlyFreeWritten}  RETURNING
    CASE WHEN held.owner = $2::bytea AND $2::bytea <> ALL (held.waiters) THEN held.fencing_token END AS token,
    -- xmax is 0 on a version this statement inserted and our xid on one it updated (ON CONFLICT locks first).
    held.xmax = '0'::xid AS inserted,
    array_position(held.waiters, $2::bytea) - 1 AS place_index,
    ${placeMark('held.waiter_leases[array_position(held.waiters, $2::bytea)]')} AS place_mark,
    CASE WHEN held.owner IS NOT NULL AND held.expires_at > clock_timestamp() THEN held.expires_at - clock_timestamp() END AS remaining
)
-- GREATEST ignores NULLs, so a lease that never expires (remaining NULL) is kept NULL explicitly.
SELECT token::text AS fencing_token,
  CASE WHEN token IS NULL AND remaining IS NOT NULL THEN GREATEST(ceil(extract(epoch FROM remaining) * 1000), 1) END::float8 AS expires_in,
  CASE WHEN token IS NULL THEN place_index END AS queue_position,
  CASE WHEN token IS NULL THEN place_mark END AS place_mark,
  ${relaxedRefusal('token IS NULL AND $5::boolean')} AS relaxed,
  -- See "redraw": a token drawn by the insert is sound only if it is above the prune mark. The function
  -- is what pg_sequences reads (it needs USAGE); NULL, a mark never raised, is no prune at all.
  inserted AND token IS NOT NULL AND (token > COALESCE(pg_sequence_last_value('${pruneMark}'::regclass), 0)) IS NOT TRUE AS redraw
FROM acquired${waiting ? '' : refusedOnSnapshot}`

  return {
    createTable: createTableSql(names, { guarded: true }),

    // to_regclass parses its argument as a (quoted) name, so it finds exactly the objects we would create.
    tableExists: 'SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS present',

    // How many of the queue's columns the table has, and whether the prune mark exists; $1 the quoted
    // table name, $2 the quoted prune mark.
    upgradeCheck: `SELECT count(*)::int AS present, to_regclass($2) IS NOT NULL AS marked FROM pg_attribute
WHERE attrelid = to_regclass($1) AND NOT attisdropped AND attname IN (${QUEUE_COLUMNS.map((c) => `'${c}'`).join(', ')})`,

    upgradeTable: upgradeTableSql(names, { guarded: true }),

    // $4: the place lease in ms when the caller will wait, else NULL. $5: whether a refusal that wrote the
    // row may commit without waiting for the WAL flush (see relaxedRefusal). $6: the caller's inbox ('' for
    // none), recorded with its place.
    //
    // Without a place lease, the `holder` snapshot spares pollers a write (and a burnt token) while the
    // lock is visibly held or a live waiter stands first (the first stored place: writes drop dead places,
    // so it is nearly always the first live one, and a dead one only sends the call on to the exact check
    // below), and gives the holder's remaining lease for free; refusing on that snapshot is right as of the
    // statement's start. It scans no queue: every subquery in a statement costs its set-up on every call,
    // executed or not, and this one would be on the uncontended path. Every other decision is ON CONFLICT's
    // SET and WHERE, evaluated on the latest row version under its row lock: of any number of racing
    // acquirers and joiners, each sees the others' effects in turn. With a place lease the row is always
    // written: granted (place removed), or the place appended or renewed, dead places dropped either way.
    // A reply is a grant exactly when $2 holds the row and has no place in it; a refusal with a place gives
    // its 0-based position.
    //
    // A caller that will wait sends acquireWaiting: the same statement without the snapshot's parts. With a
    // place lease the snapshot reads nothing, but sent anyway it was set up on every call, the waiting
    // path being also the first attempt of every `acquire()` that may wait.
    // $4 NULL: the caller will not wait.
    acquire: hot('acquire', acquireSql(false)),
    // $4 a place lease: the caller waits if refused.
    acquireWaiting: hot('acquire_waiting', acquireSql(true)),

    // The grant of a free key with no queue, which is all acquireWaiting would do there: none of its
    // subqueries, which PostgreSQL sets up on every call, run or not. Returns a row only when granted; on
    // a held key or one with a queue (ON CONFLICT's WHERE is evaluated on the latest row version, under
    // its lock) it writes nothing, and the store sends acquireWaiting. `redraw` as in acquire.
    acquireFree: hot(
      'acquire_free',
      `WITH acquired AS (
  INSERT INTO ${table} AS held (key_hash, key, owner, expires_at, fencing_token)
  VALUES (sha256($1::bytea), $1::bytea, $2::bytea, clock_timestamp() + ${ms('$3')}, ${nextToken})
  ON CONFLICT (key_hash) DO UPDATE
    SET owner = $2::bytea, expires_at = clock_timestamp() + ${ms('$3')}, fencing_token = ${nextToken}
    WHERE (held.owner IS NULL OR held.expires_at <= clock_timestamp()) AND cardinality(held.waiters) = 0
  RETURNING held.fencing_token AS token, held.xmax = '0'::xid AS inserted
)
SELECT token::text AS fencing_token,
  inserted AND (token > COALESCE(pg_sequence_last_value('${pruneMark}'::regclass), 0)) IS NOT TRUE AS redraw
FROM acquired`,
    ),

    // An insert draws its token when it builds the row, before it looks for the key's row. If it stalls in
    // between (waiting for a racer's transaction, or off the CPU) while the key is granted with a later
    // token, released and pruned, it finds no row and would hold the key with a token below that grant's.
    // Only pruning deletes rows, and a prune first raises the prune mark to at least the token of every
    // row it deletes (see `prune`), so an insert whose token is not above the mark reports `redraw`: the
    // store sends this statement, which draws a new token under the row's lock, as every update-path grant
    // does. Only a grant that created the row while a prune ran after its token was drawn pays this second
    // trip: not the grants of other keys, which drew tokens meanwhile (comparing with the token sequence's
    // own last value sent about one concurrent fresh-key grant in ten here).
    // A caller that no longer owns the row (force released, or expired and taken) gets nothing back.
    redraw: hot(
      'redraw',
      `UPDATE ${table} AS held SET fencing_token = ${nextToken}
WHERE ${keyMatches} AND held.owner = $2::bytea AND $2::bytea <> ALL (held.waiters)
RETURNING held.fencing_token::text AS fencing_token`,
    ),

    // $3 the table's channel, $4 the key's payload, $5 whether the release may commit without waiting for
    // the WAL flush (see releasedNow). The UPDATE re-reads the latest row version under its lock (READ
    // COMMITTED's re-check), so the waiters it sees are those after every earlier commit.
    //
    // With a live waiter first, the release hands the lock straight to it (the heir): owner, a new token,
    // and as the lease a claim window that ends with the heir's place lease, so an heir that died holds up
    // the next no longer than its dead place would have. The heir's place stays, its inbox marked
    // (HANDED_MARK): a grant not claimed yet. A NOTIFY on its inbox names it, the token and that place (by
    // its lease end). Its store answers its next attempt from that and claims the lock for its ttl (claim);
    // if the notification goes unheard, its next acquire claims it; if it never does, the window ends and
    // the next waiter gets the lock. Only a waiter whose store can take it (HEIR_INBOX_PREFIX) and whose
    // owner fits in a notification is handed the lock; any other is announced as before, as is $2 itself
    // (a holder that also queued). A hand-over always waits for the WAL flush: its heir acts on it at once.
    // An heir that releases before claiming loses its place with the lock.
    release: hot(
      'release',
      `WITH clock AS (SELECT clock_timestamp() AS at),
released AS (
  UPDATE ${table} AS held SET (owner, expires_at, fencing_token, waiter_leases, waiter_inboxes) = (
    SELECT heir.owner,
      CASE WHEN heir.owner IS NULL THEN ${releasedNow('held', '$5')}
        ELSE heir.lease_end END,
      CASE WHEN heir.owner IS NULL THEN held.fencing_token ELSE ${nextToken} END,
      CASE WHEN mine.handed THEN ARRAY(
        SELECT CASE WHEN place.pos = mine.pos THEN '-infinity'::timestamptz ELSE place.lease_end END
        FROM ${places('held')} ORDER BY place.pos) ELSE held.waiter_leases END,
      CASE WHEN heir.owner IS NULL THEN held.waiter_inboxes
        ELSE held.waiter_inboxes[:heir.pos - 1] || ('${HANDED_MARK}' || heir.inbox) || held.waiter_inboxes[heir.pos + 1:] END
    FROM (SELECT array_position(held.waiters, $2::bytea) AS pos) AS own
    CROSS JOIN LATERAL (SELECT own.pos, coalesce(${isHanded('held', 'own.pos')}, false) AS handed) AS mine
    CROSS JOIN LATERAL (
      SELECT CASE WHEN first.waiter <> $2::bytea AND left(first.inbox, ${HEIR_INBOX_PREFIX.length}) = '${HEIR_INBOX_PREFIX}'
          AND octet_length(first.waiter) <= ${MAX_NAMED_OWNER_BYTES} THEN first.waiter END AS owner,
        first.pos, first.inbox, first.lease_end
      FROM (SELECT 1) AS one
      LEFT JOIN LATERAL (
        SELECT ${waiterOf('held')} AS waiter, held.waiter_inboxes[place.pos] AS inbox, place.lease_end, place.pos
        FROM ${places('held')}
        WHERE cardinality(held.waiters) > 0 AND place.lease_end > clock.at AND NOT (mine.handed AND place.pos = mine.pos)
        ORDER BY place.pos LIMIT 1
      ) AS first ON true
    ) AS heir
  )
  FROM clock
  WHERE ${keyMatches} AND held.owner = $2::bytea AND (held.expires_at IS NULL OR held.expires_at > clock.at)
  RETURNING held.owner AS heir, held.fencing_token AS heir_token,
    substr(held.waiter_inboxes[array_position(held.waiters, held.owner)], 2) AS heir_inbox,
    ${placeMark('held.waiter_leases[array_position(held.waiters, held.owner)]')} AS heir_mark,
    ${nextAndInbox('held', 'clock.at', 'held.owner IS NULL AND cardinality(held.waiters) > 0')}
)
SELECT CASE
  WHEN heir IS NOT NULL THEN pg_notify(heir_inbox,
    $4::text || chr(10) || 'g:' || heir_token::text || ':' || heir_mark || ':x:' || encode(heir, 'hex'))
  WHEN next IS NOT NULL THEN ${notifyNamed('$3', '$4')}
END AS announced
FROM released`,
    ),

    // The release of a key with no queue, which is all the full release would do there: the lease ends,
    // nothing is announced. Each subquery of the full release is set up on every call, run or not; this
    // statement has none. It changes nothing when the key has a queue (its WHERE is re-checked on the
    // latest row version, so a place committed before it counts) or the lease is not $2's: the store then
    // sends the full release. $3 as $5 of release.
    releaseUnqueued: hot(
      'release_unqueued',
      `UPDATE ${table} AS held SET owner = NULL, expires_at = ${releasedNow('held', '$3')}
WHERE ${keyMatches} AND held.owner = $2::bytea AND (held.expires_at IS NULL OR held.expires_at > clock_timestamp())
  AND cardinality(held.waiters) = 0`,
    ),

    // Claims a lock a release handed to $2 (see release), for $3 ms from now: only while that very grant
    // ($4, its token) is still $2's and unclaimed, its window not ended. The place it was handed with goes.
    claim: hot(
      'claim',
      `UPDATE ${table} AS held SET expires_at = clock_timestamp() + ${ms('$3')},
  waiters = ${withoutPlace('held.waiters')},
  waiter_leases = ${withoutPlace('held.waiter_leases')},
  waiter_inboxes = ${withoutPlace('held.waiter_inboxes')}
WHERE ${keyMatches} AND held.owner = $2::bytea AND held.fencing_token = $4::bigint
  AND (held.expires_at IS NULL OR held.expires_at > clock_timestamp())
  AND ${isHanded('held', 'array_position(held.waiters, $2::bytea)')}`,
    ),

    extend: hot(
      'extend',
      `UPDATE ${table} AS held SET expires_at = clock_timestamp() + ${ms('$3')}
WHERE ${keyMatches} AND held.owner = $2::bytea AND (held.expires_at IS NULL OR held.expires_at > clock_timestamp())`,
    ),

    // $2 the table's channel, $3 the key's payload. Announces as release does.
    forceRelease: hot(
      'force_release',
      `WITH released AS (
  UPDATE ${table} AS held SET owner = NULL, expires_at = clock_timestamp()
  WHERE ${keyMatches} AND ${heldAt('clock_timestamp()')}
  RETURNING ${nextAndInbox('held', 'clock_timestamp()')}
)
${notifyNext('$2', '$3')} FROM released`,
    ),

    isLocked: hot(
      'is_locked',
      `SELECT EXISTS (SELECT 1 FROM ${table} AS held WHERE ${keyMatches} AND ${heldAt('clock_timestamp()')}) AS locked`,
    ),

    // $3 the table's channel, $4 the key's payload. A live place of $2 is ended on the spot (its lease set to
    // -infinity) rather than removed: the row then still shows where it stood, so RETURNING, which sees
    // only the new version, can tell whether it was the first live one. The next acquire that writes the
    // row drops it with the other dead places. A lock handed to $2 and not claimed yet is released too:
    // the waiter gave up without knowing of it.
    leaveQueue: hot(
      'leave_queue',
      `WITH clock AS (SELECT clock_timestamp() AS at),
left_queue AS (
  UPDATE ${table} AS held SET waiter_leases = ARRAY(
    SELECT CASE WHEN ${waiterOf('held')} = $2::bytea THEN '-infinity'::timestamptz ELSE place.lease_end END
    FROM ${places('held')} ORDER BY place.pos),
    owner = CASE WHEN ${handedTo2} THEN NULL ELSE held.owner END,
    expires_at = CASE WHEN ${handedTo2} THEN clock.at ELSE held.expires_at END
  FROM clock
  WHERE ${keyMatches} AND (${hasLivePlace} OR ${handedTo2})
  RETURNING ${nextAndInbox(
    'held',
    'clock.at',
    `NOT (${heldAt('clock.at')})
      AND NOT EXISTS (SELECT 1 FROM ${places('held')}
        WHERE place.lease_end > clock.at AND place.pos < array_position(held.waiters, $2::bytea))`,
  )}
)
${notifyNext('$3', '$4')} FROM left_queue`,
    ),

    // $1 grace in ms, $2 batch size. A row goes once its lease and every place in its queue ended more
    // than the grace ago. Rows are locked with SKIP LOCKED and re-checked under the lock, so a row being
    // taken over or joined right now is left alone.
    //
    // Before it deletes anything, the prune raises the prune mark to the token sequence's last value, and
    // deletes only rows whose token is at or below that mark: the mark covers every deleted token before
    // the deletion commits (setval takes effect at once, transaction or not), which is what an insert that
    // finds no row relies on (see `redraw`). Prunes of one table take turns (a transaction-scoped advisory
    // lock), so the mark never goes down. With no candidate row the mark is left alone.
    prune: `WITH turn AS MATERIALIZED (
  SELECT pg_advisory_xact_lock(${pruneLockKeys(names).join(', ')})
), mark AS MATERIALIZED (
  SELECT setval('${pruneMark}'::regclass, GREATEST(
    COALESCE(pg_sequence_last_value('${pruneMark}'::regclass), 1),
    COALESCE(pg_sequence_last_value('${sequence}'::regclass), 1)
  )) AS up_to FROM turn
), deleted AS (
  DELETE FROM ${table} AS held WHERE held.key_hash IN (
    SELECT key_hash FROM ${table} AS held
    WHERE ${prunable}
    LIMIT $2::int FOR UPDATE SKIP LOCKED
  ) AND ${prunable} AND held.fencing_token <= (SELECT up_to FROM mark)
  RETURNING 1
)
SELECT count(*)::int AS pruned FROM deleted`,
  }
}

/**
 * The DDL of a store's table and sequence. `guarded` adds the advisory transaction lock that makes
 * concurrent creation safe: CREATE ... IF NOT EXISTS alone can still fail on the catalogs' unique indexes
 * when two sessions run it at once. Sent without parameters, the statements run as one implicit transaction.
 */
export function createTableSql(names: TableNames, options: { guarded: boolean }): string {
  return `${ddlGuard(names, options)}CREATE TABLE IF NOT EXISTS ${names.table} (
  key_hash bytea PRIMARY KEY,
  key bytea NOT NULL,
  owner bytea,
  expires_at timestamptz,
  fencing_token bigint NOT NULL,
  waiters bytea[] NOT NULL DEFAULT '{}',
  waiter_leases timestamptz[] NOT NULL DEFAULT '{}',
  waiter_inboxes text[] NOT NULL DEFAULT '{}'
);
CREATE SEQUENCE IF NOT EXISTS ${names.sequence};
CREATE SEQUENCE IF NOT EXISTS ${names.pruneMark};`
}

/**
 * Brings a table created by an earlier release up to date: the wait queue's columns and the prune mark.
 * The constant defaults make the columns a catalog change only (no table rewrite, PostgreSQL 11+), but
 * ALTER TABLE still takes an exclusive lock for a moment, so the store runs it only when something is missing.
 */
export function upgradeTableSql(names: TableNames, options: { guarded: boolean }): string {
  return `${ddlGuard(names, options)}ALTER TABLE ${names.table}
  ADD COLUMN IF NOT EXISTS waiters bytea[] NOT NULL DEFAULT '{}',
  ADD COLUMN IF NOT EXISTS waiter_leases timestamptz[] NOT NULL DEFAULT '{}',
  ADD COLUMN IF NOT EXISTS waiter_inboxes text[] NOT NULL DEFAULT '{}';
CREATE SEQUENCE IF NOT EXISTS ${names.pruneMark};`
}

function ddlGuard(names: TableNames, options: { guarded: boolean }): string {
  const [classId, objectId] = ddlLockKeys(names)
  return options.guarded ? `SELECT pg_advisory_xact_lock(${classId}, ${objectId});\n` : ''
}
