import { createServer } from 'node:http'
import { Server } from 'socket.io'
import { listenAddress } from './listen.js'

/**
 * Baseline: Socket.IO 4 rooms. `join` (acknowledged) is socket.join, `publish` is io.to(room).emit of the
 * same message object protocol v1 sends, which Socket.IO serialises once per broadcast.
 */
interface PublishOp {
  room?: unknown
  data?: unknown
  priority?: unknown
}

const { port, host } = listenAddress()
const httpServer = createServer()
const io = new Server(httpServer, { serveClient: false, transports: ['websocket'], perMessageDeflate: false })
const sequences = new Map<string, number>()

io.on('connection', socket => {
  socket.on('join', (room: unknown, ack?: (answer: unknown) => void) => {
    if (typeof room !== 'string') {
      ack?.({ ok: false, code: 'bad_request' })
      return
    }
    void socket.join(room)
    ack?.({ ok: true, room, seq: sequences.get(room) ?? 0 })
  })
  socket.on('publish', (op: PublishOp, ack?: (answer: unknown) => void) => {
    const room = op?.room
    if (typeof room !== 'string' || !socket.rooms.has(room)) {
      ack?.({ ok: false, code: 'not_member' })
      return
    }
    const seq = (sequences.get(room) ?? 0) + 1
    sequences.set(room, seq)
    io.to(room).emit('message', { room, seq, data: op.data, priority: op.priority ?? 'normal', ts: Date.now(), from: socket.id })
    ack?.({ ok: true, seq })
  })
})
io.of('/').adapter.on('delete-room', (room: string) => sequences.delete(room))
httpServer.listen(port, host)
