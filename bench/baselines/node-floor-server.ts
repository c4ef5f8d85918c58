import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { Socket } from 'node:net'
import { listenAddress } from './listen.js'
import type { Op } from './rooms.js'

/**
 * The floor of a Node room server, not a server to run: protocol v1 rooms on `node:net` with the
 * WebSocket framing written by hand, no library, no validation beyond JSON.parse, no bound on a
 * queue. A broadcast is framed once and every member's frames of one tick go out in one write, as
 * Switchboard and uWebSockets both batch. What it costs per delivery is what any Node server pays for
 * the socket layer; the gap from there to Bun is the runtime's, not the server's.
 */

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

interface Connection {
  readonly socket: Socket
  readonly id: string
  readonly joined: Set<string>
  pending: Buffer[]
  /** Bytes received that do not make a whole frame yet. */
  partial: Buffer | undefined
}

const rooms = new Map<string, { members: Set<Connection>, seq: number }>()
const dirty: Connection[] = []
let nextId = 0

function frame (payload: Buffer, opcode = 0x1): Buffer {
  const length = payload.length
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const out = Buffer.allocUnsafe(headerLength + length)
  out[0] = 0x80 | opcode
  if (length < 126) {
    out[1] = length
  } else if (length < 65536) {
    out[1] = 126
    out.writeUInt16BE(length, 2)
  } else {
    out[1] = 127
    out.writeBigUInt64BE(BigInt(length), 2)
  }
  payload.copy(out, headerLength)
  return out
}

function flush (): void {
  for (const connection of dirty.splice(0)) {
    const { pending } = connection
    connection.pending = []
    const { socket } = connection
    if (socket.destroyed) continue
    if (pending.length === 1) {
      socket.write(pending[0] as Buffer)
      continue
    }
    // Corked writes leave as one writev, without copying the frames into one buffer.
    socket.cork()
    for (const framed of pending) socket.write(framed)
    socket.uncork()
  }
}

function send (connection: Connection, framed: Buffer): void {
  if (connection.pending.length === 0) {
    if (dirty.length === 0) setImmediate(flush)
    dirty.push(connection)
  }
  connection.pending.push(framed)
}

function sendText (connection: Connection, text: string): void {
  send(connection, frame(Buffer.from(text)))
}

function reply (connection: Connection, ref: unknown, fields: string): void {
  if (ref !== undefined) sendText(connection, `{"op":"reply","ref":${JSON.stringify(ref)},"ok":true${fields}}`)
}

function fail (connection: Connection, ref: unknown, code: string): void {
  const refPart = ref === undefined ? '' : `"ref":${JSON.stringify(ref)},`
  sendText(connection, `{"op":"error",${refPart}"code":"${code}","message":"${code}"}`)
}

function handle (connection: Connection, text: string): void {
  let op: Op
  try {
    op = JSON.parse(text) as Op
  } catch {
    return fail(connection, undefined, 'bad_request')
  }
  if (typeof op !== 'object' || op === null) return fail(connection, undefined, 'bad_request')
  const name = op.room
  switch (op.op) {
    case 'join': {
      if (typeof name !== 'string') return fail(connection, op.ref, 'bad_request')
      let room = rooms.get(name)
      if (room === undefined) rooms.set(name, room = { members: new Set(), seq: 0 })
      room.members.add(connection)
      connection.joined.add(name)
      return reply(connection, op.ref, `,"room":${JSON.stringify(name)},"seq":${room.seq}`)
    }
    case 'leave':
      if (typeof name === 'string' && connection.joined.delete(name)) rooms.get(name)?.members.delete(connection)
      return reply(connection, op.ref, '')
    case 'publish': {
      const room = typeof name === 'string' && connection.joined.has(name) ? rooms.get(name) : undefined
      if (room === undefined) return fail(connection, op.ref, 'not_member')
      const seq = ++room.seq
      const framed = frame(Buffer.from(`{"op":"message","room":${JSON.stringify(name)},"seq":${seq},"data":${JSON.stringify(op.data) ?? 'null'},"priority":${JSON.stringify(op.priority ?? 'normal')},"ts":${Date.now()},"from":"${connection.id}"}`))
      for (const member of room.members) send(member, framed)
      return reply(connection, op.ref, `,"seq":${seq}`)
    }
    case 'ping':
      return sendText(connection, op.ref === undefined ? '{"op":"pong"}' : `{"op":"pong","ref":${JSON.stringify(op.ref)}}`)
    default:
      fail(connection, op.ref, 'bad_request')
  }
}

/** Client frames: masked, unfragmented (what both bench clients send); a close is answered and ends it. */
function receive (connection: Connection, chunk: Buffer): void {
  let data = connection.partial === undefined ? chunk : Buffer.concat([connection.partial, chunk])
  connection.partial = undefined
  while (data.length >= 2) {
    const opcode = (data[0] as number) & 0x0f
    let length = (data[1] as number) & 0x7f
    let offset = 2
    if (length === 126) {
      if (data.length < 4) break
      length = data.readUInt16BE(2)
      offset = 4
    } else if (length === 127) {
      if (data.length < 10) break
      length = Number(data.readBigUInt64BE(2))
      offset = 10
    }
    if (data.length < offset + 4 + length) break
    const mask = data.subarray(offset, offset + 4)
    const payload = data.subarray(offset + 4, offset + 4 + length)
    for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i & 3] as number)
    data = data.subarray(offset + 4 + length)
    if (opcode === 0x1) handle(connection, payload.toString())
    else if (opcode === 0x9) send(connection, frame(Buffer.from(payload), 0xa))
    else if (opcode === 0x8) return void connection.socket.end(frame(Buffer.alloc(0), 0x8))
  }
  if (data.length > 0) connection.partial = Buffer.from(data)
}

const { port, host } = listenAddress()
const server = createServer((_request, response) => {
  response.writeHead(426).end('WebSocket only')
})
server.on('upgrade', (request, socket: Socket) => {
  const key = request.headers['sec-websocket-key']
  if (typeof key !== 'string') return void socket.destroy()
  const accept = createHash('sha1').update(key + GUID).digest('base64')
  socket.setNoDelay(true)
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
  const connection: Connection = { socket, id: `f${(++nextId).toString(36)}`, joined: new Set(), pending: [], partial: undefined }
  sendText(connection, `{"op":"welcome","client":"${connection.id}","version":1,"heartbeatMs":0,"maxPayload":65536}`)
  socket.on('data', chunk => { receive(connection, chunk) })
  socket.on('error', () => {})
  socket.once('close', () => {
    for (const name of connection.joined) rooms.get(name)?.members.delete(connection)
  })
})
server.listen(port, host)
