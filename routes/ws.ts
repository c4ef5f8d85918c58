import type { FastifyPluginAsync } from 'fastify'
import type { WebSocket } from 'ws'
import { AuthError, TokenVerifier, tokenOf, type Identity } from '../lib/auth/jwt.js'
import { ConnectionLimits } from '../lib/node/connection-limits.js'
import { shedUnderPressure } from '../plugins/pressure.js'
import { ERROR_STATUS } from '../lib/protocol/errors.js'
import { parseAllowedOrigins, type Config } from '../lib/config.js'
import { Opcode, createControlFrame, encodeControlFrame } from '../lib/delivery/frame.js'
import { releaseUpgrade } from '../lib/delivery/ws-adapter.js'
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
  const tokens = TokenVerifier.fromSettings(config)
  if (tokens === undefined) fastify.log.warn('no JWT_SECRET, JWT_PUBLIC_KEY or JWKS_URL: every WebSocket connection is anonymous and may join any room')
  const anonymousAllowed = tokens === undefined || config.allowAnonymous
  const limits = new ConnectionLimits(config)
  /** Identities verified at the upgrade, until the WebSocket handler picks them up. */
  const identities = new WeakMap<object, Identity>()
  const context: SessionContext = {
    hub,
    outboxes: outbox,
    workerPool,
    settings: config,
    events,
    tokens,
    policy: fastify.roomPolicy,
    limits,
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
    config: { pressureHandler: shedUnderPressure },
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
      // Verified before the upgrade: a bad token gets 401 and no WebSocket is ever made.
      const token = tokens === undefined ? undefined : tokenOf(request.query, request.headers)
      if (token === undefined && !anonymousAllowed) {
        events.info('upgrade_refused', { ip: request.ip, reason: 'no_token' }, 'refused a WebSocket upgrade without a token')
        return reply.code(401).send({ code: 'unauthorized', message: 'a token is required: ?token=, Sec-WebSocket-Protocol or Authorization: Bearer' })
      }
      let identity: Identity | undefined
      if (token !== undefined) {
        try {
          identity = await (tokens as TokenVerifier).verify(token)
        } catch (error) {
          if (!(error instanceof AuthError)) throw error
          events.info('upgrade_refused', { ip: request.ip, reason: 'bad_token' }, 'refused a WebSocket upgrade with an invalid token')
          return reply.code(401).send({ code: 'unauthorized', message: error.message })
        }
      }
      const refusal = limits.refusal(request.ip, identity?.user)
      if (refusal !== undefined) {
        events.warn('upgrade_refused', { ip: request.ip, user: identity?.user, reason: refusal.code }, 'refused a WebSocket upgrade over a connection limit')
        return reply.code(ERROR_STATUS[refusal.code]).send(refusal)
      }
      if (identity !== undefined) identities.set(request.raw, identity)
    }
  }, (socket: WebSocket, request) => {
    // Our connections are ours to drain and close: a host's @fastify/websocket closes every socket it
    // tracks in its preClose hook, which runs before our drain and would cut it short (close code 1005).
    // A host may run without client tracking (clientTracking: false): then there is nothing to remove.
    fastify.websocketServer.clients?.delete(socket)
    const upgradeErrorListeners = socket.listeners('error')
    // The session registers itself with the hub and unregisters when the socket closes.
    new ClientSession(socket, context, identities.get(request.raw), request.ip)
    // About 3 KB per connection (BENCHMARKS.md). The session handles its socket's errors itself, so a
    // host's @fastify/websocket errorHandler is not called for these connections.
    releaseUpgrade(socket, upgradeErrorListeners)
  })
}

export default wsRoute
