import { createRequire } from 'node:module'
import fp from 'fastify-plugin'
import type { Config } from '../lib/config.js'
import { Hub } from '../lib/node/hub.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This node: connections, the local room index, publishing through the engine. */
    hub: Hub
  }
}

export interface HubPluginOptions {
  config: Pick<Config, 'recoveryMax'>
}

const { version } = createRequire(import.meta.url)('switchboard/package.json') as { version: string }

/** Decorates `fastify.hub` and announces this node in the engine's registry. */
export default fp<HubPluginOptions>(async function hub (fastify, opts) {
  if (opts.config === undefined) throw new Error('hub plugin: options.config is required')
  const hub = new Hub(fastify.engine, { recoveryMax: opts.config.recoveryMax })
  fastify.decorate('hub', hub)
  const started = Date.now()
  fastify.engine.nodes.announce(() => {
    const { connections, rooms } = hub.stats()
    return { id: fastify.nodeId, connections, rooms, version, uptime: Math.floor((Date.now() - started) / 1000) }
  })
}, { name: 'hub', fastify: '5.x', dependencies: ['engine'] })
