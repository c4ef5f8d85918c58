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

export default fp<HubPluginOptions>(async function hub (fastify, opts) {
  if (opts.config === undefined) throw new Error('hub plugin: options.config is required')
  fastify.decorate('hub', new Hub(fastify.engine, { recoveryMax: opts.config.recoveryMax }))
}, { name: 'hub', fastify: '5.x', dependencies: ['engine'] })
