import fp from 'fastify-plugin'
import type { Config } from '../lib/config.js'
import { createMemoryEngine } from '../lib/engine/memory/index.js'
import type { Engine } from '../lib/engine/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Streams (seq, epoch, history, idempotency), fan-out between nodes and presence. */
    engine: Engine
  }
}

export interface EnginePluginOptions {
  config: Pick<Config, 'historySize' | 'historyTtlMs' | 'historyMaxBytes' | 'idempotencyTtlMs'>
}

/** Decorates `fastify.engine`: the embedded memory engine, which needs no external service. */
export default fp<EnginePluginOptions>(async function engine (fastify, opts) {
  if (opts.config === undefined) throw new Error('engine plugin: options.config is required')
  const { historySize, historyTtlMs, historyMaxBytes, idempotencyTtlMs } = opts.config
  const { roomPolicy } = fastify
  const memory = createMemoryEngine({
    size: historySize,
    ttlMs: historyTtlMs,
    maxBytes: historyMaxBytes,
    idempotencyTtlMs,
    limitsFor: room => roomPolicy.namespaceOf(room)?.history
  })
  fastify.decorate('engine', memory)
  fastify.addHook('onClose', async () => { await memory.close() })
}, { name: 'engine', fastify: '5.x', dependencies: ['room-policy'] })
