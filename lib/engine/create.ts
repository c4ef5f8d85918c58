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
import type { Engine, PresenceStore } from './types.js'

export type BrokerKind = 'memory' | 'redis'
export type StoreKind = 'memory' | 'redis'

export interface EngineOptions extends MemoryHistoryOptions {
  broker: BrokerKind
  history: StoreKind
  presence: StoreKind
  /** Redis instances; several are shards (rooms are spread by consistent hashing). */
  redisUrls: readonly string[]
  redisPrefix: string
  redisTimeoutMs: number
  presenceTtlMs: number
  positionCheckMs: number
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
  if (!usesRedis) return createMemoryEngine(options)

  const shards = new Shards(options.redisUrls, options.redisPrefix, { commandTimeoutMs: options.redisTimeoutMs })
  try {
    await shards.connect()
  } catch (error) {
    await shards.close()
    throw error
  }
  const presence: PresenceStore = options.presence === 'redis' ? new RedisPresence(shards, { ttlMs: options.presenceTtlMs }) : new MemoryPresence()
  if (options.broker === 'redis') {
    const engine = new RedisEngine(shards, presence, { ...options, nodeTtlMs: options.presenceTtlMs })
    await engine.broker.start()
    return engine
  }
  const history = options.history === 'redis' ? new RedisHistory(shards, options) : new MemoryHistory(options)
  const engine = new ComposedEngine(history, new MemoryBroker(), presence, new LocalNodeRegistry(), () => shards.ready())
  const close = engine.close.bind(engine)
  engine.close = async () => {
    await close()
    await shards.close()
  }
  return engine
}
