import { createHash } from 'node:crypto'
import { MAX_NAMED_OWNER_BYTES } from './sql.js'
import { ddlLockKeys, resolveTableNames, type TableNames } from './table_name.js'

/**
 * The SQL of semaphores and read-write locks (`PostgresStore.shared`), built once per store from validated,
 * quoted names; values are always parameters.
 *
 * One row per shared key, in a table of its own (`<table>_shared`), holding arrays:
 * - holders: `holders` (owner bytes), `holder_exclusive`, `holder_ends` (lease end, 'infinity' for none);
 * - the FIFO queue: `waiters`, `waiter_exclusive`, `waiter_limits` (NULL: no limit), `waiter_leases`.
 *
 * Every operation is one call of a PL/pgSQL function created with the table, hence one statement and one
 * round trip. A function rather than one plain statement because the grant rule and the walk that names the
 * admitted waiters are loops over the queue whose every step depends on the one before: as SQL they would be
 * window functions over unnested arrays in every statement, much harder to read and check than the loop.
 * The function locks the key's row (SELECT ... FOR UPDATE) before it decides, so concurrent callers take
 * turns on the latest version, and reads the clock once (clock_timestamp(), the server's).
 *
 * Isolation: the call is its own transaction at the session's level. Under read committed each statement of
 * the function sees the latest committed rows, and the row lock orders the racers. Under repeatable read and
 * serializable, a row changed, deleted or inserted by a racer since the call's snapshot makes PostgreSQL
 * raise 40001 (FOR UPDATE and ON CONFLICT do so themselves), which the store retries as for the mutex.
 *
 * Fencing: tokens come from the mutex's sequence and are drawn only while the caller has the key's row
 * locked (an inserted row is locked by its inserter). Every earlier grant of the key drew its token before
 * the commit that let this caller take the lock, so tokens of a key strictly increase, and a row deleted
 * when it is empty (or pruned) takes no counter with it: no grace period is needed for the fence.
 *
 * Storage: the function deletes a key's row as soon as it has no live holder and no live place; rows whose
 * every holder and place ended unseen (their owners died) are pruned by housekeeping.
 */
export interface SharedStatements {
  createTable: string
  /** $1 the quoted table, $2 the quoted sequence, $3 the function's signature: whether all exist. */
  tableExists: string
  /** The function's signature for `to_regprocedure`. */
  functionSignature: string
  operation: { readonly name: string; readonly text: string }
  /** $1 grace in ms, $2 batch size. */
  prune: string
}

/** What the function's first parameter selects. */
export type SharedOperation = 'acquire' | 'release' | 'extend' | 'force_release' | 'is_locked' | 'leave_queue'

const PARAMETER_TYPES = 'text, bytea, bytea, boolean, bigint, double precision, double precision, text, text'

export function buildSharedStatements(names: TableNames): SharedStatements {
  const { sharedTable: table, sharedFunction: fn } = names
  // Every holder's lease and every place ended more than the grace ($1 ms) ago.
  const prunable = `NOT EXISTS (SELECT 1 FROM unnest(s.holder_ends) AS h(e)
      WHERE h.e >= clock_timestamp() - $1::float8 * interval '1 millisecond')
    AND NOT EXISTS (SELECT 1 FROM unnest(s.waiter_leases) AS w(e)
      WHERE w.e >= clock_timestamp() - $1::float8 * interval '1 millisecond')`
  const text = `SELECT granted_token, expires_in, queue_position, answer
FROM ${fn}($1::text, $2::bytea, $3::bytea, $4::boolean, $5::bigint, $6::float8, $7::float8, $8::text, $9::text)`
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 16)
  return {
    createTable: createSharedTableSql(names, { guarded: true }),
    tableExists:
      'SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regprocedure($3) IS NOT NULL AS present',
    functionSignature: `${fn}(${PARAMETER_TYPES})`,
    operation: { name: `verrou_shared_${digest}`, text },
    prune: `DELETE FROM ${table} AS s WHERE s.key_hash IN (
  SELECT key_hash FROM ${table} AS s WHERE ${prunable}
  LIMIT $2::int FOR UPDATE SKIP LOCKED
) AND ${prunable}`,
  }
}

/**
 * The DDL of semaphores and read-write locks for the store of `tableName` (default `verrou_locks`): what
 * `autoCreateTable` runs on the first shared-lock operation. Run it yourself with `autoCreateTable: false`.
 */
export function sharedLocksSql(tableName = 'verrou_locks'): string {
  return createSharedTableSql(resolveTableNames(tableName), { guarded: false })
}

/**
 * The DDL of the shared locks: their table, the sequence (shared with the mutex table, created here too so
 * either can come first) and the function. `guarded` serialises concurrent creation with the mutex table's
 * advisory lock. CREATE OR REPLACE keeps the function's body that of the running release.
 */
export function createSharedTableSql(names: TableNames, options: { guarded: boolean }): string {
  const [classId, objectId] = ddlLockKeys(names)
  const guard = options.guarded ? `SELECT pg_advisory_xact_lock(${classId}, ${objectId});\n` : ''
  return `${guard}CREATE TABLE IF NOT EXISTS ${names.sharedTable} (
  key_hash bytea PRIMARY KEY,
  key bytea NOT NULL,
  holders bytea[] NOT NULL DEFAULT '{}',
  holder_exclusive boolean[] NOT NULL DEFAULT '{}',
  holder_ends timestamptz[] NOT NULL DEFAULT '{}',
  waiters bytea[] NOT NULL DEFAULT '{}',
  waiter_exclusive boolean[] NOT NULL DEFAULT '{}',
  waiter_limits bigint[] NOT NULL DEFAULT '{}',
  waiter_leases timestamptz[] NOT NULL DEFAULT '{}'
);
CREATE SEQUENCE IF NOT EXISTS ${names.sequence};
CREATE OR REPLACE FUNCTION ${names.sharedFunction}(p_op text, p_key bytea, p_owner bytea, p_exclusive boolean,
  p_limit bigint, p_ttl float8, p_place float8, p_channel text, p_payload text)
RETURNS TABLE (granted_token text, expires_in float8, queue_position int, answer boolean)
LANGUAGE plpgsql VOLATILE
AS ${dollarQuote(functionBody(names))};`
}

/** Quotes `body` with a dollar tag that does not occur in it (table names may contain `$`). */
function dollarQuote(body: string): string {
  let tag = '$verrou$'
  while (body.includes(tag)) tag = `${tag.slice(0, -1)}_$`
  return `${tag}${body}${tag}`
}

/**
 * The function. Parameters: the operation, key and owner bytes, the mode (exclusive, limit), the ttl and
 * place lease in ms (NULL: never expires / no place), the NOTIFY channel and the key's payload. It returns
 * one row: the token of a grant, or for a refusal the ms until the soonest holder's lease ends and the
 * caller's 0-based place; `answer` is the boolean of release, extend, isLocked and acquire.
 */
function functionBody(names: TableNames): string {
  const table = names.sharedTable
  const nextToken = `nextval('${names.sequence}'::regclass)::text`
  const until = (ms: string) =>
    `CASE WHEN ${ms} IS NULL THEN 'infinity'::timestamptz ELSE v_at + ${ms} * interval '1 millisecond' END`
  // Removes element `i` from each of the arrays.
  const removeAt = (arrays: string[], i: string) => arrays.map((a) => `${a} := ${a}[:${i} - 1] || ${a}[${i} + 1:];`).join(' ')
  return `
DECLARE
  v_at timestamptz := clock_timestamp();
  v_hash bytea := sha256(p_key);
  v_row record;
  ho bytea[]; hx boolean[]; he timestamptz[];
  wo bytea[]; wx boolean[]; wl bigint[]; we timestamptz[];
  v_dropped boolean;
  v_ended boolean := false;
  v_changed boolean := false;
  v_granted boolean := false;
  v_writer boolean;
  v_readers bigint;
  v_mine int;
  v_ahead int;
  v_named int := 0;
  v_soonest timestamptz;
  i int;
BEGIN
  IF p_op = 'is_locked' THEN
    -- A read: no row lock needed.
    SELECT count(*) FILTER (WHERE NOT h.x), coalesce(bool_or(h.x), false) INTO v_readers, v_writer
      FROM ${table} AS s, unnest(s.holder_exclusive, s.holder_ends) AS h(x, e)
      WHERE s.key_hash = v_hash AND h.e > v_at;
    answer := v_writer OR (p_exclusive AND v_readers > 0) OR (NOT p_exclusive AND p_limit IS NOT NULL AND v_readers >= p_limit);
    RETURN NEXT;
    RETURN;
  END IF;

  SELECT s.holders, s.holder_exclusive, s.holder_ends, s.waiters, s.waiter_exclusive, s.waiter_limits, s.waiter_leases
    INTO v_row FROM ${table} AS s WHERE s.key_hash = v_hash FOR UPDATE;
  IF NOT FOUND THEN
    -- Nobody holds the key and nobody waits.
    IF p_op <> 'acquire' THEN
      answer := false;
      RETURN NEXT;
      RETURN;
    END IF;
    INSERT INTO ${table} (key_hash, key, holders, holder_exclusive, holder_ends)
      VALUES (v_hash, p_key, ARRAY[p_owner], ARRAY[p_exclusive], ARRAY[${until('p_ttl')}])
      ON CONFLICT (key_hash) DO NOTHING;
    IF FOUND THEN
      -- Drawn after the insert, with the new row locked: see "Fencing" in shared_sql.ts.
      granted_token := ${nextToken};
      answer := true;
      RETURN NEXT;
      RETURN;
    END IF;
    -- A racer created the row first and committed (ON CONFLICT waited for it): decide on its row.
    SELECT s.holders, s.holder_exclusive, s.holder_ends, s.waiters, s.waiter_exclusive, s.waiter_limits, s.waiter_leases
      INTO v_row FROM ${table} AS s WHERE s.key_hash = v_hash FOR UPDATE;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'the shared lock''s row was deleted while this call ran';
    END IF;
  END IF;

  -- Expired holders and dead places are gone for every decision, and dropped by the write below.
  SELECT coalesce(array_agg(h.o ORDER BY h.i), '{}'), coalesce(array_agg(h.x ORDER BY h.i), '{}'),
      coalesce(array_agg(h.e ORDER BY h.i), '{}')
    INTO ho, hx, he
    FROM unnest(v_row.holders, v_row.holder_exclusive, v_row.holder_ends) WITH ORDINALITY AS h(o, x, e, i)
    WHERE h.e > v_at;
  SELECT coalesce(array_agg(w.o ORDER BY w.i), '{}'), coalesce(array_agg(w.x ORDER BY w.i), '{}'),
      coalesce(array_agg(w.l ORDER BY w.i), '{}'), coalesce(array_agg(w.e ORDER BY w.i), '{}')
    INTO wo, wx, wl, we
    FROM unnest(v_row.waiters, v_row.waiter_exclusive, v_row.waiter_limits, v_row.waiter_leases)
      WITH ORDINALITY AS w(o, x, l, e, i)
    WHERE w.e > v_at;
  v_dropped := cardinality(ho) < cardinality(v_row.holders) OR cardinality(wo) < cardinality(v_row.waiters);

  IF p_op = 'acquire' THEN
    -- Not re-entrant: an owner that holds the key (in any mode) is refused and its queue left alone.
    IF NOT (p_owner = ANY (ho)) THEN
      v_mine := array_position(wo, p_owner);
      v_ahead := coalesce(v_mine - 1, cardinality(wo));
      IF p_exclusive THEN
        v_granted := cardinality(ho) = 0 AND v_ahead = 0;
      ELSE
        -- No writer holds or waits ahead, and the holders plus the readers ahead leave room under the limit.
        v_granted := NOT (true = ANY (hx)) AND NOT (true = ANY (wx[1:v_ahead]))
          AND (p_limit IS NULL OR cardinality(ho) + v_ahead < p_limit);
      END IF;
      IF v_granted THEN
        IF v_mine IS NOT NULL THEN
          ${removeAt(['wo', 'wx', 'wl', 'we'], 'v_mine')}
        END IF;
        ho := array_append(ho, p_owner);
        hx := array_append(hx, p_exclusive);
        he := array_append(he, ${until('p_ttl')});
        v_changed := true;
        granted_token := ${nextToken};
      ELSIF p_place IS NOT NULL THEN
        -- Join at the tail, or keep the place: its lease renewed, its mode the latest asked.
        IF v_mine IS NULL THEN
          wo := array_append(wo, p_owner);
          wx := array_append(wx, p_exclusive);
          wl := array_append(wl, p_limit);
          we := array_append(we, v_at + p_place * interval '1 millisecond');
          v_mine := cardinality(wo);
          v_changed := true;
        ELSIF wx[v_mine] IS DISTINCT FROM p_exclusive OR wl[v_mine] IS DISTINCT FROM p_limit
          OR v_at + p_place * interval '1 millisecond' - we[v_mine] >= p_place * interval '1 millisecond' / 20 THEN
          -- A renewal that would move the lease end by less than 1/20 of the lease writes nothing: waiters
          -- that poll fast would otherwise rewrite the row on every attempt, and under repeatable read or
          -- serializable each write makes every racer's call fail and run again.
          wx[v_mine] := p_exclusive;
          wl[v_mine] := p_limit;
          we[v_mine] := v_at + p_place * interval '1 millisecond';
          v_changed := true;
        END IF;
        queue_position := v_mine - 1;
      END IF;
    END IF;
    answer := v_granted;
    IF NOT v_granted THEN
      -- When the first holding can end: a waiter need not sleep past it.
      SELECT min(h.e) INTO v_soonest FROM unnest(he) AS h(e) WHERE h.e < 'infinity';
      IF v_soonest IS NOT NULL THEN
        expires_in := greatest(ceil(extract(epoch FROM v_soonest - v_at) * 1000), 1);
      END IF;
    END IF;
  ELSIF p_op = 'release' OR p_op = 'extend' THEN
    i := array_position(ho, p_owner);
    answer := i IS NOT NULL AND hx[i] = p_exclusive;
    IF answer AND p_op = 'release' THEN
      ${removeAt(['ho', 'hx', 'he'], 'i')}
      v_ended := true;
    ELSIF answer THEN
      he[i] := ${until('p_ttl')};
      v_changed := true;
    END IF;
  ELSIF p_op = 'force_release' THEN
    -- Exclusive: the writer; shared: every reader and permit.
    IF p_exclusive = ANY (hx) THEN
      SELECT coalesce(array_agg(h.o ORDER BY h.i), '{}'), coalesce(array_agg(h.x ORDER BY h.i), '{}'),
          coalesce(array_agg(h.e ORDER BY h.i), '{}')
        INTO ho, hx, he
        FROM unnest(ho, hx, he) WITH ORDINALITY AS h(o, x, e, i)
        WHERE h.x <> p_exclusive;
      v_ended := true;
    END IF;
    answer := v_ended;
  ELSIF p_op = 'leave_queue' THEN
    v_mine := array_position(wo, p_owner);
    IF v_mine IS NOT NULL THEN
      ${removeAt(['wo', 'wx', 'wl', 'we'], 'v_mine')}
      v_ended := true;
    END IF;
    answer := v_ended;
  ELSE
    RAISE EXCEPTION 'unknown shared lock operation %', p_op;
  END IF;

  -- Something ended (a holding, a place): name, in queue order, every waiter the grant rule now admits,
  -- counting those named before as holders, and stop at the first it does not. Nothing when nobody waits.
  IF (v_dropped OR v_ended) AND cardinality(wo) > 0 THEN
    FOR i IN 1 .. cardinality(wo) LOOP
      IF wx[i] THEN
        EXIT WHEN cardinality(ho) > 0 OR v_named > 0;
      ELSE
        EXIT WHEN true = ANY (hx) OR (wl[i] IS NOT NULL AND cardinality(ho) + v_named >= wl[i]);
      END IF;
      PERFORM pg_notify(p_channel, p_payload || chr(10) || CASE WHEN octet_length(wo[i]) <= ${MAX_NAMED_OWNER_BYTES}
        THEN 'x:' || encode(wo[i], 'hex') ELSE 'h:' || encode(sha256(wo[i]), 'hex') END);
      v_named := v_named + 1;
      EXIT WHEN wx[i];
    END LOOP;
  END IF;

  IF cardinality(ho) = 0 AND cardinality(wo) = 0 THEN
    -- Nothing left to keep: the fence lives in the sequence, not in the row.
    DELETE FROM ${table} WHERE key_hash = v_hash;
  ELSIF v_changed OR v_dropped OR v_ended THEN
    UPDATE ${table} SET holders = ho, holder_exclusive = hx, holder_ends = he,
        waiters = wo, waiter_exclusive = wx, waiter_limits = wl, waiter_leases = we
      WHERE key_hash = v_hash;
  END IF;
  RETURN NEXT;
END
`
}
