import fp from 'fastify-plugin'
import { Hub } from '../lib/node/hub.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Rooms, connections and fan-out. */
    hub: Hub
  }
}

export default fp(async function hub (fastify) {
  fastify.decorate('hub', new Hub())
}, { name: 'hub', fastify: '5.x' })
