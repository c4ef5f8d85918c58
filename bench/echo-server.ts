import { createServer } from 'node:net'

/**
 * The floor under the tasks workload, not a server under test: a plain TCP echo, no WebSocket, no JSON,
 * no worker thread. A task round trip over any socket costs at least this round trip on this machine.
 */
const server = createServer({ noDelay: true }, socket => {
  socket.on('error', () => {})
  socket.on('data', chunk => socket.write(chunk))
})

server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 })
})
process.once('disconnect', () => process.exit(0))
