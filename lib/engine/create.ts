import { ComposedEngine } from './composed.js'
import { MemoryBroker } from './memory/broker.js'
import { MemoryHistory, type MemoryHistoryOptions } from './memory/history.js'
import { LocalNodeRegistry } from './memory/nodes.js'
import { createMemoryEngine } from './memory/index.js'
import { MemoryPresence } from './memory/presence.js'
import { RedisHistory } from './redis/history.js'
import { RedisEngine } from './redis/index.js'
import { RedisPresence } from './redis/presence.js'
import { Shards } from './redis/shards.js'
import { PostgresHistory } from './postgres/history.js'
import { RedisBroker } from './redis/broker.js'
import { UNORDERED_HOLD_MS } from './sequencer.js'
import { RedisNodeRegistry } from './redis/nodes.js'
import type { Broker, Engine, HistoryStore, NodeRegistry, PresenceStore } from './types.js'

export type BrokerKind = 'memory' | 'redis'
export type StoreKind = 'memory' | 'redis'
export type HistoryKind = StoreKind | 'postgres'

export interface EngineOptions extends MemoryHistoryOptions {
  broker: BrokerKind
  history: HistoryKind
  presence: StoreKind
  /** Redis instances; several are shards (rooms are spread by consistent hashing). */
  redisUrls: readonly string[]
  redisPrefix: string
  redisTimeoutMs: number
  presenceTtlMs: number
  positionCheckMs: number
  databaseUrl: string
  databaseSchema: string
  databaseTimeoutMs: number
}

/**
 * Builds the engine the settings name and connects what it needs; a service that cannot be reached
 * fails here, at boot. A cluster broker needs a shared history: with node-local seqs, two nodes
 * would give the same seq to different messages of a room.
 */
export async function createEngine (options: EngineOptions): Promise<Engine> {
  if (options.broker !== 'memory' && options.history === 'memory') {
    throw new Error(`HISTORY=memory cannot be used with BROKER=${options.broker}: every node would number a room's messages on its own`)
  }
  const usesRedis = options.broker === 'redis' || options.history === 'redis' || options.presence === 'redis'
  if (!usesRedis && options.history === 'memory') return createMemoryEngine(options)

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
      ? await PostgresHistory.open({ ...options, databaseUrl: options.databaseUrl, schema: options.databaseSchema, timeoutMs: options.databaseTimeoutMs })
      : undefined
    if (postgres !== undefined) opened.push(postgres)
    const history: HistoryStore = postgres ?? (options.history === 'redis' ? new RedisHistory(shards as Shards, options) : new MemoryHistory(options))
    let broker: Broker = new MemoryBroker()
    let nodes: NodeRegistry = new LocalNodeRegistry()
    if (options.broker === 'redis') {
      const redisBroker = new RedisBroker(shards as Shards, {
        positionCheckMs: options.positionCheckMs,
        read: async (room, query) => await history.read(room, query),
        // A history outside Redis answers for all rooms at once, whichever shard they are on.
        positions: async (_shard, rooms) => await (postgres as PostgresHistory).positions(rooms),
        // Each node publishes after its own commit, so two nodes' messages of a room may arrive swapped.
        holdMs: UNORDERED_HOLD_MS
      })
      await redisBroker.start()
      broker = redisBroker
      nodes = new RedisNodeRegistry((shards as Shards).first, options.redisPrefix, options.presenceTtlMs)
    }
    const ready = (): boolean => (shards?.ready() ?? true) && (postgres?.ready() ?? true)
    const engine = new ComposedEngine(history, broker, presence, nodes, ready)
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
