import { hostname } from 'node:os'
import fp from 'fastify-plugin'
import type { Config } from '../lib/config.js'
import { createEngine, type HistoryKind, type StoreKind } from '../lib/engine/create.js'
import type { Engine } from '../lib/engine/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Streams (seq, epoch, history, idempotency), fan-out between nodes, presence and the node registry. */
    engine: Engine
    /** This node's id in the registry (GET /api/nodes). */
    nodeId: string
  }
}

export interface EnginePluginOptions {
  config: Pick<Config, 'historySize' | 'historyTtlMs' | 'historyMaxBytes' | 'idempotencyTtlMs' | 'broker' | 'history' | 'presence'
  | 'redisUrl' | 'redisPrefix' | 'redisTimeoutMs' | 'presenceTtlMs' | 'positionCheckMs' | 'nodeId' | 'databaseUrl' | 'databaseSchema' | 'databaseTimeoutMs' | 'natsUrl' | 'natsPrefix' | 'amqpUrl' | 'amqpExchange' | 'amqpRouting'>
}

/**
 * Decorates `fastify.engine`: the embedded memory engine by default (no external service), Redis with
 * BROKER=redis. A Redis that cannot be reached fails the registration, naming REDIS_URL.
 */
export default fp<EnginePluginOptions>(async function engine (fastify, opts) {
  if (opts.config === undefined) throw new Error('engine plugin: options.config is required')
  const { config } = opts
  const { roomPolicy } = fastify
  // HISTORY follows a Redis broker; PRESENCE is in Redis whenever the broker or the history is.
  const history = (config.history === '' ? (config.broker === 'redis' ? 'redis' : 'memory') : config.history) as HistoryKind
  const presence = (config.presence === '' ? (config.broker === 'redis' || history === 'redis' ? 'redis' : 'memory') : config.presence) as StoreKind
  let engine: Engine
  try {
    engine = await createEngine({
      size: config.historySize,
      ttlMs: config.historyTtlMs,
      maxBytes: config.historyMaxBytes,
      idempotencyTtlMs: config.idempotencyTtlMs,
      limitsFor: room => roomPolicy.namespaceOf(room)?.history,
      broker: config.broker,
      history,
      presence,
      redisUrls: config.redisUrl.split(',').map(url => url.trim()),
      redisPrefix: config.redisPrefix,
      redisTimeoutMs: config.redisTimeoutMs,
      presenceTtlMs: config.presenceTtlMs,
      positionCheckMs: config.positionCheckMs,
      databaseUrl: config.databaseUrl,
      databaseSchema: config.databaseSchema,
      databaseTimeoutMs: config.databaseTimeoutMs,
      natsUrl: config.natsUrl,
      natsPrefix: config.natsPrefix,
      amqpUrl: config.amqpUrl,
      amqpExchange: config.amqpExchange,
      amqpRouting: config.amqpRouting
    })
  } catch (error) {
    throw new Error(`engine plugin: ${(error as Error).message}`, { cause: error })
  }
  fastify.decorate('engine', engine)
  fastify.decorate('nodeId', config.nodeId === '' ? `${hostname()}-${process.pid}` : config.nodeId)
  fastify.addHook('onClose', async () => { await engine.close() })
}, { name: 'engine', fastify: '5.x', dependencies: ['room-policy'] })
