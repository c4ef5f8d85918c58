import type { FastifyPluginAsync } from 'fastify'
import type { WebSocket } from 'ws'
import { parseAllowedOrigins, type Config } from '../lib/config.js'
import { Opcode, createControlFrame, encodeControlFrame } from '../lib/delivery/frame.js'
import { ConnectionEvents } from '../lib/node/connection-events.js'
import { ClientSession, type SessionContext } from '../lib/node/session.js'
import { Priority } from '../lib/protocol/priority.js'

export interface WsRouteOptions {
  config: Config
}

const PING = encodeControlFrame(Opcode.ping)

/** GET /ws: the protocol v1 endpoint. One heartbeat sweep covers every session of this app. */
const wsRoute: FastifyPluginAsync<WsRouteOptions> = async (fastify, opts) => {
  const { config } = opts
  const { hub, outbox, workerPool, lifecycle } = fastify
  const allowedOrigins = parseAllowedOrigins(config.allowedOrigins)
  const events = new ConnectionEvents(fastify.log)
  const context: SessionContext = {
    hub,
    outboxes: outbox,
    workerPool,
    settings: config,
    events,
    isDraining: () => lifecycle.draining
  }

  const sweep = setInterval(() => {
    const ping = createControlFrame(PING, Priority.critical)
    for (const connection of hub.connections()) connection.heartbeat(ping)
  }, config.heartbeatMs)
  sweep.unref()
  fastify.addHook('onClose', async () => { clearInterval(sweep) })

  fastify.get('/ws', {
    websocket: true,
    onRequest: async (request, reply) => {
      if (lifecycle.draining) {
        events.info('upgrade_refused', { ip: request.ip, reason: 'shutting_down' }, 'refused a WebSocket upgrade while draining')
        return reply.code(503).send({ code: 'shutting_down', message: 'the server is shutting down' })
      }
      const origin = request.headers.origin
      if (allowedOrigins !== undefined && !allowedOrigins.has(origin ?? '')) {
        events.warn('upgrade_refused', { ip: request.ip, origin, reason: 'origin' }, 'refused a WebSocket upgrade from an origin not in ALLOWED_ORIGINS')
        return reply.code(403).send({ code: 'forbidden', message: 'origin not allowed' })
      }
    }
  }, (socket: WebSocket) => {
    // Our connections are ours to drain and close: a host's @fastify/websocket closes every socket it
    // tracks in its preClose hook, which runs before our drain and would cut it short (close code 1005).
    // A host may run without client tracking (clientTracking: false): then there is nothing to remove.
    fastify.websocketServer.clients?.delete(socket)
    // The session registers itself with the hub and unregisters when the socket closes.
    new ClientSession(socket, context)
  })
}

export default wsRoute
