import { createServer, type Socket } from 'node:net'

/**
 * The floor under the fan-out workload, not a server under test: plain TCP, no WebSocket, no JSON. It
 * accepts connections and, when the harness asks over IPC, writes one buffer to every connection in a
 * loop ("a sweep") and reports how long each sweep took.
 */
interface SweepRequest {
  sweeps: number
  gapMs: number
  bytes: number
}

const sockets: Socket[] = []
const server = createServer({ noDelay: true }, socket => {
  socket.on('error', () => {})
  sockets.push(socket)
})

process.on('message', (request: SweepRequest | 'count') => {
  if (request === 'count') {
    process.send?.({ connections: sockets.length })
    return
  }
  void sweep(request)
})

async function sweep ({ sweeps, gapMs, bytes }: SweepRequest): Promise<void> {
  const chunk = Buffer.alloc(bytes, 0x78)
  const durations: number[] = []
  for (let i = 0; i < sweeps; i++) {
    const started = performance.now()
    for (const socket of sockets) socket.write(chunk)
    durations.push(performance.now() - started)
    await new Promise(resolve => setTimeout(resolve, gapMs))
  }
  process.send?.({ durations })
}

server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 })
})
process.once('disconnect', () => process.exit(0))
