import fastifyWebsocket from '@fastify/websocket'
import Fastify from 'fastify'
import switchboard from '../../app.js'
import { serveWithFeatures } from './features.js'
import { listenAddress } from './listen.js'

/**
 * Baseline: ws-features' inline handler (features.ts) at GET /ws of a host Fastify server that also runs
 * the whole Switchboard app at /switchboard, as server.ts runs it (its plugins, timers, metrics and
 * worker pool), with no connection of its own. What this costs beyond ws-features is what the process
 * of Switchboard's stack costs, whatever code serves the socket.
 */
const { port, host } = listenAddress()
const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' }, requestTimeout: 30_000, keepAliveTimeout: 5_000, forceCloseConnections: 'idle' })
await app.register(fastifyWebsocket, { options: { perMessageDeflate: false, maxPayload: 64 * 1024 } })
await app.register(switchboard, { prefix: '/switchboard' })
app.get('/ws', { websocket: true }, serveWithFeatures)
await app.listen({ port, host })
