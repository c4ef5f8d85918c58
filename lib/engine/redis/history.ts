import type {
  HistoryPage,
  HistoryQuery,
  HistoryStats,
  HistoryStore,
  Publication,
  PublishOutcome,
  PublishRequest,
  Recovery,
  RecoveryFailure,
  StreamPosition
} from '../types.js'
import { candidateEpoch, decodeEntry, encodeRequest, JoinReads, limitsOf, type StreamLimits } from '../entry.js'
import { run, type ScriptCommands, type Shard, type Shards } from './shards.js'

export interface RedisHistoryOptions extends StreamLimits {
  idempotencyTtlMs: number
}

/**
 * Streams in Redis, one script per operation on the room's shard. The stream's epoch lives next to its
 * seq, so whichever node first touches a lost stream (expired, evicted, flushed) creates its new life,
 * and every node sees the same one.
 */
export class RedisHistory implements HistoryStore {
  private readonly counters: HistoryStats = { duplicates: 0 }
  private readonly joinReads = new JoinReads(room => this.readPosition(room), (room, since, max) => this.readRecovery(room, since, max))

  constructor (private readonly shards: Shards, private readonly options: RedisHistoryOptions) {}

  append (request: PublishRequest): Promise<{ publication: Publication, duplicate: boolean }> {
    return this.appendAndPublish(request, '').then(outcome => ({
      publication: { ...request, seq: outcome.seq, epoch: outcome.epoch },
      duplicate: outcome.duplicate
    }))
  }

  /** Stores the message and, in the same script, publishes it on `channel` ('' publishes nothing). */
  async appendAndPublish (request: PublishRequest, channel: string): Promise<PublishOutcome> {
    const { room } = request
    const shard = this.shards.of(room)
    const { size, ttlMs } = limitsOf(this.options, room)
    const hasId = request.id !== undefined
    const [epoch, seq, duplicate] = await run(shard, () => shard.command.sbAppend(
      this.shards.key(room, 's'), this.shards.key(room, 'h'), hasId ? this.shards.key(room, `i:${request.id as string}`) : this.shards.key(room, 's'),
      candidateEpoch(), ttlMs, encodeRequest(request), size, this.options.idempotencyTtlMs, channel, hasId ? '1' : '0'))
    if (duplicate === 1) this.counters.duplicates++
    return { epoch, seq, duplicate: duplicate === 1 }
  }

  position (room: string): Promise<StreamPosition> {
    return this.joinReads.position(room)
  }

  private async readPosition (room: string): Promise<StreamPosition> {
    const shard = this.shards.of(room)
    const [epoch, seq] = await run(shard, () => shard.command.sbPosition(
      this.shards.key(room, 's'), this.shards.key(room, 'h'), candidateEpoch(), limitsOf(this.options, room).ttlMs))
    return { epoch, seq }
  }

  async read (room: string, query: HistoryQuery): Promise<HistoryPage> {
    const shard = this.shards.of(room)
    const [epoch, seq, entries] = await run(shard, () => shard.command.sbRead(
      this.shards.key(room, 's'), this.shards.key(room, 'h'), candidateEpoch(), limitsOf(this.options, room).ttlMs,
      query.since ?? 0, query.limit, query.reverse === true ? '1' : '0'))
    const publications = entries.map(entry => decodeEntry(room, epoch, entry))
    if (query.reverse === true) publications.reverse()
    return { position: { epoch, seq }, publications }
  }

  recover (room: string, since: StreamPosition, max: number): Promise<Recovery> {
    return this.joinReads.recover(room, since, max)
  }

  private async readRecovery (room: string, since: StreamPosition, max: number): Promise<Recovery> {
    const shard = this.shards.of(room)
    const [epoch, seq, failure, entries] = await run(shard, () => shard.command.sbRecover(
      this.shards.key(room, 's'), this.shards.key(room, 'h'), candidateEpoch(), limitsOf(this.options, room).ttlMs,
      since.epoch, since.seq, max))
    const position = { epoch, seq }
    if (failure !== '') return { recovered: false, position, reason: failure as RecoveryFailure }
    return { recovered: true, position, publications: (entries ?? []).map(entry => decodeEntry(room, epoch, entry)) }
  }

  /** The positions of many rooms of one shard in one pipeline (the broker's position check). */
  async positions (shard: Shard, rooms: readonly string[]): Promise<StreamPosition[]> {
    const pipeline = shard.command.pipeline() as unknown as ScriptCommands & { exec (): Promise<[Error | null, unknown][] | null> }
    for (const room of rooms) pipeline.sbPosition(this.shards.key(room, 's'), this.shards.key(room, 'h'), candidateEpoch(), limitsOf(this.options, room).ttlMs)
    // exec() resolves even when commands failed: each result carries its own error.
    const results = await run(shard, async () => {
      const replies = await pipeline.exec()
      const failed = replies?.find(([error]) => error !== null)
      if (replies === null || failed !== undefined) throw failed?.[0] ?? new Error('pipeline aborted')
      return replies
    })
    return results.map(([, value]) => {
      const [epoch, seq] = value as [string, number]
      return { epoch, seq }
    })
  }

  /** Only what this node counted: the streams themselves are Redis's to count. */
  stats (): HistoryStats {
    return this.counters
  }

  close (): void {}

}
