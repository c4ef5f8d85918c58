import type { AmqpRouting } from './amqp/broker.js'
import { createMemoryEngine } from './memory/index.js'
import type { MemoryHistoryOptions } from './memory/history.js'
import type { Engine } from './types.js'

export type BrokerKind = 'memory' | 'redis' | 'nats' | 'amqp'
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
  natsUrl: string
  natsPrefix: string
  amqpUrl: string
  amqpExchange: string
  amqpRouting: AmqpRouting
}

/** Why a combination cannot work, or undefined when it can. */
function invalidCombination ({ broker, history }: Pick<EngineOptions, 'broker' | 'history'>): string | undefined {
  if (broker !== 'memory' && history === 'memory') {
    return `HISTORY=memory cannot be used with BROKER=${broker}: every node would number a room's messages on its own; set HISTORY=redis or HISTORY=postgres`
  }
  return undefined
}

/**
 * Builds the engine the settings name and connects what it needs; a service that cannot be reached
 * fails here, at boot, naming its variable.
 */
export async function createEngine (options: EngineOptions): Promise<Engine> {
  const invalid = invalidCombination(options)
  if (invalid !== undefined) throw new Error(invalid)
  const usesRedis = options.broker === 'redis' || options.history === 'redis' || options.presence === 'redis'
  if (!usesRedis && options.history === 'memory' && options.broker === 'memory') return createMemoryEngine(options)
  // Loaded only when configured: the clients of Redis, NATS, RabbitMQ and PostgreSQL cost a server on
  // the memory engine about 14 MB of RSS and 200 ms at boot (BENCHMARKS.md).
  const { createServiceEngine } = await import('./services.js')
  return await createServiceEngine(options, usesRedis)
}
