import { LATENCY_BUCKETS_SECONDS, PlainHistogram } from '../../metrics/histogram.js'
import type { ClusterStats, Engine, PresenceStore, PublishOutcome, PublishRequest } from '../types.js'
import { RedisBroker } from './broker.js'
import { RedisHistory, type RedisHistoryOptions } from './history.js'
import { RedisNodeRegistry } from './nodes.js'
import type { Shard, Shards } from './shards.js'

export interface RedisEngineOptions extends RedisHistoryOptions {
  positionCheckMs: number
  /** How long a node's entry in the registry outlives its last heartbeat. */
  nodeTtlMs: number
}

/**
 * Redis for everything: one script call per publish stores the message (seq, epoch, history, id) and
 * publishes it, so every node receives a room's messages in seq order and nothing is half-written.
 */
export class RedisEngine implements Engine {
  readonly history: RedisHistory
  readonly broker: RedisBroker
  readonly nodes: RedisNodeRegistry
  readonly cluster: ClusterStats
  private readonly publishSeconds = new PlainHistogram(LATENCY_BUCKETS_SECONDS)

  constructor (private readonly shards: Shards, readonly presence: PresenceStore, options: RedisEngineOptions) {
    this.history = new RedisHistory(shards, options)
    this.broker = new RedisBroker(shards, {
      positionCheckMs: options.positionCheckMs,
      read: (room, query) => this.history.read(room, query),
      positions: (shard: Shard, rooms) => this.history.positions(shard, rooms),
      // The script publishes inside the step that assigns the seq: a room's messages arrive in order.
      holdMs: 0
    })
    this.nodes = new RedisNodeRegistry(shards.first, shards.prefix, options.nodeTtlMs)
    this.cluster = {
      publishSeconds: this.publishSeconds,
      lagSeconds: this.broker.lagSeconds,
      sequencer: this.broker.sequencer.stats,
      shards: shards.list
    }
  }

  async publish (request: PublishRequest): Promise<PublishOutcome> {
    const started = performance.now()
    const outcome = await this.history.appendAndPublish(request, this.shards.channel(request.room))
    this.publishSeconds.observe((performance.now() - started) / 1000)
    return outcome
  }

  ready (): boolean {
    return this.shards.ready()
  }

  async close (): Promise<void> {
    await this.nodes.close()
    this.broker.close()
    await this.presence.close()
    await this.shards.close()
  }
}
