import type { FastifyPluginAsync } from 'fastify'
import type { WebSocket } from 'ws'
import { parseAllowedOrigins, type Config } from '../lib/config.js'
import { ClientSession, type SessionContext } from '../lib/session.js'

export interface WsRouteOptions {
  config: Config
}

/** GET /ws: the protocol v1 endpoint. One heartbeat sweep covers every session of this app. */
const wsRoute: FastifyPluginAsync<WsRouteOptions> = async (fastify, opts) => {
  const { config } = opts
  const { hub, outbox, workerPool, lifecycle } = fastify
  const allowedOrigins = parseAllowedOrigins(config.allowedOrigins)
  const context: SessionContext = {
    hub,
    outboxes: outbox,
    tasks: workerPool,
    settings: config,
    isDraining: () => lifecycle.draining
  }

  const sweep = setInterval(() => {
    for (const member of hub.members()) member.heartbeat()
  }, config.heartbeatMs)
  sweep.unref()
  fastify.addHook('onClose', async () => { clearInterval(sweep) })

  fastify.get('/ws', {
    websocket: true,
    onRequest: async (request, reply) => {
      if (lifecycle.draining) return reply.code(503).send({ code: 'shutting_down', message: 'the server is shutting down' })
      if (allowedOrigins !== undefined && !allowedOrigins.has(request.headers.origin ?? '')) {
        return reply.code(403).send({ code: 'forbidden', message: 'origin not allowed' })
      }
    }
  }, (socket: WebSocket) => {
    // The session registers itself with the hub and unregisters when the socket closes.
    new ClientSession(socket, context)
  })
}

export default wsRoute
