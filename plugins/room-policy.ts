import fp from 'fastify-plugin'
import { RoomPolicy } from '../lib/auth/permissions.js'
import type { Config } from '../lib/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Room namespaces (ROOMS_CONFIG): capabilities, member caps, history size and ttl per room pattern. */
    roomPolicy: RoomPolicy
  }
}

export interface RoomPolicyPluginOptions {
  config: Pick<Config, 'roomsConfig'>
}

/** Reads ROOMS_CONFIG at registration: a bad file stops the boot with the path and the field. */
export default fp<RoomPolicyPluginOptions>(async function roomPolicy (fastify, opts) {
  if (opts.config === undefined) throw new Error('room-policy plugin: options.config is required')
  const policy = opts.config.roomsConfig === '' ? RoomPolicy.open() : RoomPolicy.fromFile(opts.config.roomsConfig)
  if (policy.isOpen) fastify.log.warn('no ROOMS_CONFIG: every room is open to every connection (join, publish, history, presence)')
  fastify.decorate('roomPolicy', policy)
}, { name: 'room-policy', fastify: '5.x' })
