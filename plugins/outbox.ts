import fp from 'fastify-plugin'
import type { Config } from '../lib/config.js'
import { OutboxRegistry } from '../lib/delivery/outbox.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Makes per-socket priority outboxes and keeps the live ones, with their shared counters. */
    outbox: OutboxRegistry
  }
}

export interface OutboxPluginOptions {
  config: Pick<Config, 'sendQueueSize' | 'sendQueueBytes' | 'writeBatch' | 'writeHighWater'>
}

export default fp<OutboxPluginOptions>(async function outbox (fastify, opts) {
  if (opts.config === undefined) throw new Error('outbox plugin: options.config is required')
  const { sendQueueSize, sendQueueBytes, writeBatch, writeHighWater } = opts.config
  const registry = new OutboxRegistry({
    maxMessages: sendQueueSize,
    maxBytes: sendQueueBytes,
    writeBatch,
    writeHighWater
  })
  fastify.decorate('outbox', registry)
  fastify.addHook('onClose', async () => {
    for (const live of registry.live) registry.release(live)
  })
}, { name: 'outbox', fastify: '5.x' })
