import fastifyWebsocket from '@fastify/websocket'
import Fastify from 'fastify'
import { listenAddress } from './listen.js'
import { serveV1 } from './rooms.js'

/** Baseline: the same protocol v1 rooms as the bare ws server, on Fastify + @fastify/websocket at GET /ws. */
const { port, host } = listenAddress()
const app = Fastify({ logger: false })
await app.register(fastifyWebsocket, { options: { perMessageDeflate: false, maxPayload: 64 * 1024 } })
app.get('/ws', { websocket: true }, serveV1)
await app.listen({ port, host })
