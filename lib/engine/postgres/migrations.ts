import type { Pool } from 'pg'

/**
 * The schema, one version per entry; a database at version n gets the entries after n, in one
 * transaction under an advisory lock, so N nodes starting together migrate once and in order.
 * Tables live in their own schema (DATABASE_SCHEMA), so deployments and tests can share a database.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE streams (
    room text PRIMARY KEY,
    epoch text NOT NULL,
    top bigint NOT NULL,
    -- ms since the epoch, by the database's clock: every node sees the same expiry.
    expires_at bigint NOT NULL,
    -- The room's retention (HISTORY_SIZE and HISTORY_TTL_MS, or its namespace's), for the cleanup job.
    keep int NOT NULL,
    ttl bigint NOT NULL
  );
  CREATE TABLE messages (
    room text NOT NULL,
    seq bigint NOT NULL,
    stored_at bigint NOT NULL,
    -- The request's fields as the engines encode them (lib/engine/entry.ts): header JSON, a
    -- newline, the data's JSON text. Stored as sent, never parsed by the database.
    payload text NOT NULL,
    PRIMARY KEY (room, seq)
  );
  CREATE TABLE publish_ids (
    room text NOT NULL,
    id text NOT NULL,
    epoch text NOT NULL,
    seq bigint NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (room, id)
  );
  CREATE INDEX publish_ids_expiry ON publish_ids (expires_at);
  CREATE INDEX streams_expiry ON streams (expires_at);
  CREATE INDEX messages_age ON messages (stored_at);

  -- A stream as a publish, read or position sees it: created, or begun again after it expired, with
  -- its earlier life's messages and ids gone. p_lock (the append) locks the row until commit; reads
  -- take no lock, and a renewal only replaces a row that is still expired, so two never both renew.
  CREATE FUNCTION current_stream (p_room text, p_candidate text, p_ttl bigint, p_keep int, p_now bigint, p_lock boolean, OUT o_epoch text, OUT o_top bigint)
  LANGUAGE plpgsql AS $$
  DECLARE s_expires bigint;
  BEGIN
    IF p_lock THEN
      SELECT epoch, top, expires_at INTO o_epoch, o_top, s_expires FROM streams WHERE room = p_room FOR UPDATE;
    ELSE
      SELECT epoch, top, expires_at INTO o_epoch, o_top, s_expires FROM streams WHERE room = p_room;
    END IF;
    IF FOUND AND s_expires >= p_now THEN RETURN; END IF;
    INSERT INTO streams (room, epoch, top, expires_at, keep, ttl) VALUES (p_room, p_candidate, 0, p_now + p_ttl, p_keep, p_ttl)
      ON CONFLICT (room) DO UPDATE SET epoch = EXCLUDED.epoch, top = 0, expires_at = EXCLUDED.expires_at, keep = EXCLUDED.keep, ttl = EXCLUDED.ttl
      WHERE streams.expires_at < p_now
      RETURNING epoch, top INTO o_epoch, o_top;
    IF NOT FOUND THEN
      -- Another transaction created or renewed it meanwhile: that life is the one.
      SELECT epoch, top INTO o_epoch, o_top FROM streams WHERE room = p_room FOR UPDATE;
      RETURN;
    END IF;
    DELETE FROM messages WHERE room = p_room;
    DELETE FROM publish_ids WHERE room = p_room AND epoch <> o_epoch;
  END $$;

  -- Appends a batch: seq, idempotency and storage per message, one call per batch. Rooms are taken in
  -- name order (each room's messages in input order), so two nodes' batches lock rows in the same
  -- order and never deadlock. Returns one row per input, numbered by its place in the input.
  CREATE FUNCTION append_batch (p_rooms text[], p_payloads text[], p_ids text[], p_candidates text[], p_sizes int[], p_ttls bigint[], p_id_ttl bigint)
  RETURNS TABLE (o_n int, o_epoch text, o_seq bigint, o_duplicate boolean)
  LANGUAGE plpgsql AS $$
  DECLARE
    v_now bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    v_epoch text;
    v_top bigint;
    v_seen bigint;
    i int;
  BEGIN
    FOR i IN SELECT r.n FROM unnest(p_rooms) WITH ORDINALITY AS r(room, n) ORDER BY r.room, r.n LOOP
      o_n := i;
      SELECT s.o_epoch, s.o_top INTO v_epoch, v_top FROM current_stream(p_rooms[i], p_candidates[i], p_ttls[i], p_sizes[i], v_now, true) s;
      IF p_ids[i] IS NOT NULL THEN
        SELECT seq INTO v_seen FROM publish_ids WHERE room = p_rooms[i] AND id = p_ids[i] AND epoch = v_epoch AND expires_at > v_now;
        IF FOUND THEN
          o_epoch := v_epoch; o_seq := v_seen; o_duplicate := true;
          RETURN NEXT;
          CONTINUE;
        END IF;
      END IF;
      v_top := v_top + 1;
      IF p_sizes[i] > 0 THEN
        INSERT INTO messages (room, seq, stored_at, payload) VALUES (p_rooms[i], v_top, v_now, p_payloads[i]);
      END IF;
      IF p_ids[i] IS NOT NULL AND p_id_ttl > 0 THEN
        INSERT INTO publish_ids (room, id, epoch, seq, expires_at) VALUES (p_rooms[i], p_ids[i], v_epoch, v_top, v_now + p_id_ttl)
          ON CONFLICT (room, id) DO UPDATE SET epoch = EXCLUDED.epoch, seq = EXCLUDED.seq, expires_at = EXCLUDED.expires_at;
      END IF;
      UPDATE streams SET top = v_top, expires_at = v_now + p_ttls[i], keep = p_sizes[i], ttl = p_ttls[i] WHERE room = p_rooms[i];
      o_epoch := v_epoch; o_seq := v_top; o_duplicate := false;
      RETURN NEXT;
    END LOOP;
  END $$;
  `
]

/** Session-level advisory lock key: "swbd" in ASCII. */
const MIGRATION_LOCK = 0x73776264

export async function migrate (pool: Pool, schema: string): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    await client.query('BEGIN')
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await client.query(`SET LOCAL search_path TO ${schema}`)
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version int NOT NULL)')
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_version')
    const current = rows[0]?.version ?? 0
    for (let version = current; version < MIGRATIONS.length; version++) await client.query(MIGRATIONS[version] as string)
    if (rows.length === 0) await client.query('INSERT INTO schema_version (version) VALUES ($1)', [MIGRATIONS.length])
    else await client.query('UPDATE schema_version SET version = $1', [MIGRATIONS.length])
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {})
    client.release()
  }
}
