import { AmqpBroker } from './amqp/broker.js'
import { ComposedEngine } from './composed.js'
import type { EngineOptions } from './create.js'
import { MemoryBroker } from './memory/broker.js'
import { MemoryHistory } from './memory/history.js'
import { LocalNodeRegistry } from './memory/nodes.js'
import { MemoryPresence } from './memory/presence.js'
import { HeartbeatNodeRegistry } from './heartbeat-nodes.js'
import { NatsBroker } from './nats/broker.js'
import { PostgresHistory } from './postgres/history.js'
import { RedisBroker } from './redis/broker.js'
import { RedisHistory } from './redis/history.js'
import { RedisEngine } from './redis/index.js'
import { RedisNodeRegistry } from './redis/nodes.js'
import { RedisPresence } from './redis/presence.js'
import { Shards, type Shard } from './redis/shards.js'
import { UNORDERED_HOLD_MS } from './sequencer.js'
import type { Broker, ClusterStats, Engine, HistoryStore, NodeRegistry, PresenceStore, StreamPosition } from './types.js'

/** An engine with at least one part on an external service (Redis, NATS, RabbitMQ, PostgreSQL); see createEngine. */
export async function createServiceEngine (options: EngineOptions, usesRedis: boolean): Promise<Engine> {
  const opened: { close (): Promise<void> | void }[] = []
  try {
    let shards: Shards | undefined
    if (usesRedis) {
      shards = new Shards(options.redisUrls, options.redisPrefix, { commandTimeoutMs: options.redisTimeoutMs })
      opened.push(shards)
      await shards.connect()
    }
    const presence: PresenceStore = options.presence === 'redis' ? new RedisPresence(shards as Shards, { ttlMs: options.presenceTtlMs }) : new MemoryPresence()
    if (options.broker === 'redis' && options.history === 'redis') {
      const engine = new RedisEngine(shards as Shards, presence, { ...options, nodeTtlMs: options.presenceTtlMs })
      await engine.broker.start()
      return engine
    }

    const postgres = options.history === 'postgres'
      ? await PostgresHistory.open({ ...options, schema: options.databaseSchema, timeoutMs: options.databaseTimeoutMs })
      : undefined
    if (postgres !== undefined) opened.push(postgres)
    const redisHistory = options.history === 'redis' ? new RedisHistory(shards as Shards, options) : undefined
    const history: HistoryStore = postgres ?? redisHistory ?? new MemoryHistory(options)
    const read = async (room: string, query: Parameters<HistoryStore['read']>[1]) => await history.read(room, query)
    /** Positions for a cluster broker's check: one query for PostgreSQL, one pipeline per shard for Redis. */
    const positions = async (rooms: readonly string[]): Promise<StreamPosition[]> => {
      if (postgres !== undefined) return await postgres.positions(rooms)
      const byShard = new Map<Shard, number[]>()
      rooms.forEach((room, i) => {
        const shard = (shards as Shards).of(room)
        byShard.set(shard, [...(byShard.get(shard) ?? []), i])
      })
      const out: StreamPosition[] = new Array(rooms.length)
      await Promise.all(Array.from(byShard, async ([shard, indexes]) => {
        const found = await (redisHistory as RedisHistory).positions(shard, indexes.map(i => rooms[i] as string))
        indexes.forEach((i, k) => { out[i] = found[k] as StreamPosition })
      }))
      return out
    }

    let broker: Broker = new MemoryBroker()
    let nodes: NodeRegistry = new LocalNodeRegistry()
    let brokerReady = (): boolean => true
    let cluster: ClusterStats | undefined
    if (options.broker === 'redis') {
      const redisBroker = new RedisBroker(shards as Shards, {
        positionCheckMs: options.positionCheckMs,
        read,
        positions: async (_shard, rooms) => await positions(rooms),
        // Each node publishes after its own commit, so two nodes' messages of a room may arrive swapped.
        holdMs: UNORDERED_HOLD_MS
      })
      await redisBroker.start()
      broker = redisBroker
      nodes = new RedisNodeRegistry((shards as Shards).first, options.redisPrefix, options.presenceTtlMs)
      cluster = { lagSeconds: redisBroker.lagSeconds, sequencer: redisBroker.sequencer.stats, shards: (shards as Shards).list }
    } else if (options.broker === 'nats') {
      const natsBroker = await NatsBroker.open({ url: options.natsUrl, prefix: options.natsPrefix, positionCheckMs: options.positionCheckMs, read, positions })
      opened.push(natsBroker)
      broker = natsBroker
      nodes = new HeartbeatNodeRegistry(natsBroker.heartbeats(), options.presenceTtlMs)
      brokerReady = () => natsBroker.ready()
      cluster = { lagSeconds: natsBroker.lagSeconds, sequencer: natsBroker.sequencer.stats, shards: [{ name: options.natsUrl, stats: natsBroker.stats }] }
    } else if (options.broker === 'amqp') {
      const amqpBroker = await AmqpBroker.open({ url: options.amqpUrl, exchange: options.amqpExchange, routing: options.amqpRouting, positionCheckMs: options.positionCheckMs, read, positions })
      opened.push(amqpBroker)
      broker = amqpBroker
      nodes = new HeartbeatNodeRegistry(amqpBroker.heartbeats(), options.presenceTtlMs)
      brokerReady = () => amqpBroker.ready()
      cluster = { lagSeconds: amqpBroker.lagSeconds, sequencer: amqpBroker.sequencer.stats, shards: [{ name: new URL(options.amqpUrl).host, stats: amqpBroker.stats }] }
    }
    const ready = (): boolean => brokerReady() && (shards?.ready() ?? true) && (postgres?.ready() ?? true)
    const engine = new ComposedEngine(history, broker, presence, nodes, ready, cluster)
    const close = engine.close.bind(engine)
    engine.close = async () => {
      await close()
      await shards?.close()
    }
    return engine
  } catch (error) {
    for (const resource of opened.reverse()) await resource.close()
    throw error
  }
}
