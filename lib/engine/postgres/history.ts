import pg from 'pg'
import { EngineUnavailableError } from '../errors.js'
import { candidateEpoch, decodePayload, encodeRequest, JoinReads, limitsOf, type StreamLimits } from '../entry.js'
import type {
  HistoryPage,
  HistoryQuery,
  HistoryStats,
  HistoryStore,
  Publication,
  PublishRequest,
  Recovery,
  StreamPosition
} from '../types.js'
import { migrate } from './migrations.js'

export interface PostgresHistoryOptions extends StreamLimits {
  databaseUrl: string
  /** The schema the tables live in (DATABASE_SCHEMA). */
  schema: string
  /** A query unanswered this long fails (the publish answers unavailable). */
  timeoutMs: number
  idempotencyTtlMs: number
}

/** Most publishes in one append_batch call. */
const BATCH_MAX = 1000

const NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint'

interface Pending {
  request: PublishRequest
  size: number
  ttlMs: number
  resolve: (appended: { publication: Publication, duplicate: boolean }) => void
  reject: (error: Error) => void
}

type Row = Record<string, string | null>

// Every read also bounds seq by the stream's top: a stream begun again in the same statement (after it
// expired) must not show its earlier life's rows, which that statement's snapshot still holds.

/**
 * Streams in PostgreSQL. Publishes are appended in batches: whatever arrived while the previous batch
 * was in the database goes in the next one, in arrival order, in one call of append_batch. One batch
 * at a time per node, so a connection's publishes to a room get increasing seqs in the order sent.
 * Retention is by count (HISTORY_SIZE) and age (HISTORY_TTL_MS): reads apply it at once, a cleanup
 * job deletes what it hides.
 */
export class PostgresHistory implements HistoryStore {
  private readonly pool: pg.Pool
  private readonly counters: HistoryStats = { duplicates: 0 }
  private readonly joinReads = new JoinReads(room => this.readPosition(room), (room, since, max) => this.readRecovery(room, since, max))
  private queue: Pending[] = []
  private flushing = false
  private scheduled = false
  private healthy = true
  private readonly timers: NodeJS.Timeout[] = []

  private constructor (private readonly options: PostgresHistoryOptions) {
    this.pool = new pg.Pool({
      connectionString: options.databaseUrl,
      options: `-c search_path=${options.schema}`,
      connectionTimeoutMillis: options.timeoutMs,
      query_timeout: options.timeoutMs,
      max: 4
    })
    // A broken idle connection is replaced by the pool; the error must not crash the process.
    this.pool.on('error', () => { this.healthy = false })
  }

  /** Connects, migrates the schema and starts the cleanup; fails naming DATABASE_URL. */
  static async open (options: PostgresHistoryOptions): Promise<PostgresHistory> {
    const history = new PostgresHistory(options)
    try {
      await migrate(history.pool, options.schema)
    } catch (error) {
      await history.pool.end().catch(() => {})
      throw new EngineUnavailableError(`cannot use PostgreSQL (DATABASE_URL): ${(error as Error).message}`, { cause: error })
    }
    history.timers.push(setInterval(() => { void history.cleanup() }, Math.min(options.ttlMs, 60_000)))
    history.timers.push(setInterval(() => { void history.query('SELECT 1', []).catch(() => {}) }, 2000))
    for (const timer of history.timers) timer.unref()
    return history
  }

  ready (): boolean {
    return this.healthy
  }

  append (request: PublishRequest): Promise<{ publication: Publication, duplicate: boolean }> {
    const { size, ttlMs } = limitsOf(this.options, request.room)
    return new Promise((resolve, reject) => {
      this.queue.push({ request, size, ttlMs, resolve, reject })
      if (!this.scheduled && !this.flushing) {
        this.scheduled = true
        setImmediate(() => { void this.flush() })
      }
    })
  }

  position (room: string): Promise<StreamPosition> {
    return this.joinReads.position(room)
  }

  private async readPosition (room: string): Promise<StreamPosition> {
    const { size, ttlMs } = limitsOf(this.options, room)
    const { rows } = await this.query(`SELECT o_epoch, o_top FROM current_stream($1, $2, $3, $4, ${NOW_MS}, false)`, [room, candidateEpoch(), ttlMs, size])
    return positionOf(rows[0] as Row)
  }

  /** The positions of many rooms in one query (a cluster broker's position check). */
  async positions (rooms: readonly string[]): Promise<StreamPosition[]> {
    const limits = rooms.map(room => limitsOf(this.options, room))
    const { rows } = await this.query(`
      SELECT s.o_epoch, s.o_top FROM unnest($1::text[], $2::bigint[], $3::int[]) WITH ORDINALITY AS r(room, ttl, keep, n),
        LATERAL current_stream(r.room, $4 || r.n, r.ttl, r.keep, ${NOW_MS}, false) s ORDER BY r.n`,
    [rooms, limits.map(limit => limit.ttlMs), limits.map(limit => limit.size), candidateEpoch()])
    return rows.map(row => positionOf(row as Row))
  }

  async read (room: string, query: HistoryQuery): Promise<HistoryPage> {
    const { size, ttlMs } = limitsOf(this.options, room)
    const order = query.reverse === true ? 'DESC' : 'ASC'
    const { rows } = await this.query(`
      WITH s AS (SELECT o_epoch, o_top FROM current_stream($1, $2, $3, $5, ${NOW_MS}, false))
      SELECT s.o_epoch, s.o_top, m.seq, m.payload FROM s LEFT JOIN LATERAL (
        SELECT seq, payload FROM messages
        WHERE room = $1 AND seq > greatest($4::bigint, s.o_top - $5) AND seq <= s.o_top AND stored_at >= ${NOW_MS} - $3
        ORDER BY seq ${order} LIMIT $6
      ) m ON true`, [room, candidateEpoch(), ttlMs, query.since ?? 0, size, query.limit])
    const position = positionOf(rows[0] as Row)
    const publications = rows.filter(row => row.seq !== null).map(row => decodePayload(room, position.epoch, Number(row.seq), row.payload as string, 0))
    return { position, publications }
  }

  recover (room: string, since: StreamPosition, max: number): Promise<Recovery> {
    return this.joinReads.recover(room, since, max)
  }

  private async readRecovery (room: string, since: StreamPosition, max: number): Promise<Recovery> {
    const { size, ttlMs } = limitsOf(this.options, room)
    const { rows } = await this.query(`
      WITH s AS (SELECT o_epoch, o_top FROM current_stream($1, $2, $3, $7, ${NOW_MS}, false))
      SELECT s.o_epoch, s.o_top, m.seq, m.payload FROM s LEFT JOIN LATERAL (
        SELECT seq, payload FROM messages
        WHERE s.o_epoch = $4 AND s.o_top - $5 <= $6 AND room = $1 AND seq > greatest($5::bigint, s.o_top - $7) AND seq <= s.o_top AND stored_at >= ${NOW_MS} - $3
        ORDER BY seq
      ) m ON true`, [room, candidateEpoch(), ttlMs, since.epoch, since.seq, max, size])
    const position = positionOf(rows[0] as Row)
    if (since.epoch !== position.epoch || since.seq > position.seq) return { recovered: false, position, reason: 'epoch_changed' }
    if (position.seq - since.seq > max) return { recovered: false, position, reason: 'too_many' }
    const kept = rows.filter(row => row.seq !== null)
    if (kept.length !== position.seq - since.seq) return { recovered: false, position, reason: 'too_old' }
    return { recovered: true, position, publications: kept.map(row => decodePayload(room, position.epoch, Number(row.seq), row.payload as string, 0)) }
  }

  stats (): HistoryStats {
    return this.counters
  }

  async close (): Promise<void> {
    for (const timer of this.timers) clearInterval(timer)
    // Publishes already queued are still written; the pool closes after them.
    while (this.flushing || this.queue.length > 0) await this.flush()
    await this.pool.end()
  }

  private async flush (): Promise<void> {
    this.scheduled = false
    if (this.flushing) return
    this.flushing = true
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, BATCH_MAX)
        try {
          const { rows } = await this.query('SELECT o_n, o_epoch, o_seq, o_duplicate FROM append_batch($1, $2, $3, $4, $5, $6, $7)', [
            batch.map(p => p.request.room),
            batch.map(p => encodeRequest(p.request)),
            batch.map(p => p.request.id ?? null),
            batch.map(() => candidateEpoch()),
            batch.map(p => p.size),
            batch.map(p => p.ttlMs),
            this.options.idempotencyTtlMs
          ])
          for (const row of rows as Row[]) {
            const pending = batch[(row.o_n as unknown as number) - 1] as Pending
            const duplicate = row.o_duplicate as unknown as boolean
            if (duplicate) this.counters.duplicates++
            pending.resolve({ publication: { ...pending.request, seq: Number(row.o_seq), epoch: row.o_epoch as string }, duplicate })
          }
        } catch (error) {
          for (const pending of batch) pending.reject(error as Error)
        }
      }
    } finally {
      this.flushing = false
    }
  }

  /** Every failure is the store being unavailable: nothing of the statement was committed. */
  private async query (text: string, values: unknown[]): Promise<pg.QueryResult> {
    try {
      const result = await this.pool.query(text, values)
      this.healthy = true
      return result
    } catch (error) {
      if (!(error instanceof pg.DatabaseError)) this.healthy = false
      throw new EngineUnavailableError(`postgres: ${(error as Error).message}`, { cause: error })
    }
  }

  /** Deletes what retention hides: streams that expired, messages over their room's count or age, old ids. */
  private async cleanup (): Promise<void> {
    await this.query(`
      WITH gone AS (DELETE FROM streams WHERE expires_at < ${NOW_MS} RETURNING room)
      DELETE FROM messages m USING gone WHERE m.room = gone.room`, []).catch(() => {})
    await this.query(`
      DELETE FROM messages m USING streams s
      WHERE m.room = s.room AND (m.seq <= s.top - s.keep OR m.stored_at < ${NOW_MS} - s.ttl)`, []).catch(() => {})
    await this.query(`DELETE FROM publish_ids WHERE expires_at < ${NOW_MS}`, []).catch(() => {})
  }

}

function positionOf (row: Row): StreamPosition {
  return { epoch: row.o_epoch as string, seq: Number(row.o_top) }
}
