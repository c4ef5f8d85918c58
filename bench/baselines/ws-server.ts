import { WebSocketServer } from 'ws'
import { listenAddress } from './listen.js'
import { serveV1 } from './rooms.js'

/** Baseline: protocol v1 rooms on a bare `ws` server (any path is accepted). */
const { port, host } = listenAddress()
const server = new WebSocketServer({ port, host, perMessageDeflate: false, maxPayload: 64 * 1024 })
server.on('connection', serveV1)
server.on('error', error => {
  console.error(error)
  process.exit(1)
})
