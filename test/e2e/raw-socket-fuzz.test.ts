import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import fc from 'fast-check'
import t from 'tap'
import { TestClient, listenApp } from '../helpers/app.js'

const MAX_PAYLOAD = 4096

/** A TCP connection that did the WebSocket handshake by hand, so that any bytes can follow it. */
async function rawSocket (port: number): Promise<{ socket: Socket, received: () => Buffer, ended: Promise<void> }> {
  const socket = connect(port, '127.0.0.1')
  let buffer = Buffer.alloc(0)
  socket.on('data', chunk => { buffer = Buffer.concat([buffer, chunk]) })
  socket.on('error', () => {})
  const ended = new Promise<void>(resolve => socket.once('close', () => resolve()))
  await new Promise(resolve => socket.once('connect', resolve))
  socket.write([
    'GET /ws HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13', '', ''
  ].join('\r\n'))
  while (!buffer.includes('\r\n\r\n')) await new Promise(resolve => socket.once('data', resolve))
  const headerEnd = buffer.indexOf('\r\n\r\n') + 4
  if (!buffer.subarray(0, headerEnd).toString().startsWith('HTTP/1.1 101')) throw new Error(`no upgrade: ${buffer.toString()}`)
  const start = headerEnd
  return { socket, received: () => buffer.subarray(start), ended }
}

/** A client frame: FIN/RSV/opcode byte, masked unless told otherwise. */
function frame (first: number, payload: Buffer, { masked = true, length = payload.length } = {}): Buffer {
  const header: number[] = [first]
  const maskBit = masked ? 0x80 : 0
  if (length < 126) header.push(maskBit | length)
  else if (length < 65536) header.push(maskBit | 126, length >> 8, length & 0xff)
  else {
    header.push(maskBit | 127, 0, 0, 0, 0)
    header.push((length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff)
  }
  if (!masked) return Buffer.concat([Buffer.from(header), payload])
  const mask = randomBytes(4)
  const body = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] as number)))
  return Buffer.concat([Buffer.from(header), mask, body])
}

/** The close code in the server's frames (after any text frames), once the server ended the connection. */
async function closeCode (raw: Awaited<ReturnType<typeof rawSocket>>): Promise<number | undefined> {
  await raw.ended
  const bytes = raw.received()
  let offset = 0
  while (offset + 2 <= bytes.length) {
    const opcode = (bytes[offset] as number) & 0x0f
    let length = (bytes[offset + 1] as number) & 0x7f
    let start = offset + 2
    if (length === 126) { length = bytes.readUInt16BE(start); start += 2 } else if (length === 127) { length = Number(bytes.readBigUInt64BE(start)); start += 8 }
    if (opcode === 0x8) return length >= 2 ? bytes.readUInt16BE(start) : 1005
    offset = start + length
  }
  return undefined
}

const text = (value: string): Buffer => Buffer.from(value)
const CASES: { name: string, bytes: () => Buffer, code: number }[] = [
  { name: 'a reserved bit without an extension', bytes: () => frame(0x80 | 0x40 | 0x1, text('{"op":"ping"}')), code: 1002 },
  { name: 'an unmasked client frame', bytes: () => frame(0x81, text('{"op":"ping"}'), { masked: false }), code: 1002 },
  { name: 'an unknown opcode', bytes: () => frame(0x83, text('x')), code: 1002 },
  { name: 'a ping over 125 bytes', bytes: () => frame(0x89, Buffer.alloc(126, 1)), code: 1002 },
  { name: 'a fragmented ping', bytes: () => frame(0x09, text('part')), code: 1002 },
  { name: 'a continuation with nothing to continue', bytes: () => frame(0x80, text('orphan')), code: 1002 },
  { name: 'a new message inside a fragmented one', bytes: () => Buffer.concat([frame(0x01, text('{"op":')), frame(0x81, text('{"op":"ping"}'))]), code: 1002 },
  { name: 'invalid UTF-8 in a text frame', bytes: () => frame(0x81, Buffer.from([0x7b, 0xc3, 0x28, 0x7d])), code: 1007 },
  { name: 'a frame over MAX_PAYLOAD', bytes: () => frame(0x81, Buffer.alloc(MAX_PAYLOAD + 1, 0x20)), code: 1009 },
  { name: 'a fragmented message over MAX_PAYLOAD', bytes: () => Buffer.concat([frame(0x01, Buffer.alloc(MAX_PAYLOAD, 0x20)), frame(0x80, Buffer.alloc(10, 0x20))]), code: 1009 },
  { name: 'a close frame with a one-byte payload', bytes: () => frame(0x88, Buffer.from([0x03])), code: 1002 },
  { name: 'a close frame with code 1005', bytes: () => frame(0x88, Buffer.from([0x03, 0xed])), code: 1002 },
  { name: 'a close frame with code 999', bytes: () => frame(0x88, Buffer.from([0x03, 0xe7])), code: 1002 },
  { name: 'a close frame with code 5000', bytes: () => frame(0x88, Buffer.from([0x13, 0x88])), code: 1002 },
  { name: 'a close reason that is not UTF-8', bytes: () => frame(0x88, Buffer.from([0x03, 0xe8, 0xc3, 0x28])), code: 1007 }
]

t.test('malformed frames below the WebSocket layer get the RFC 6455 close code, and everyone else is still served', async t => {
  const { url, app } = await listenApp(t, { maxPayload: MAX_PAYLOAD })
  const port = Number(new URL(url).port)
  const bystander = await TestClient.connect(`${url}/ws`)
  t.teardown(() => { bystander.close() })
  await bystander.op('welcome')
  await bystander.request({ op: 'join', room: 'calm' })
  for (const { name, bytes, code } of CASES) {
    const raw = await rawSocket(port)
    raw.socket.write(bytes())
    t.equal(await closeCode(raw), code, `${name}: ${code}`)
  }
  t.match(await bystander.request({ op: 'publish', room: 'calm', data: 'still here' }), { ok: true, seq: 1 }, 'the other connection was never disturbed')
  t.equal(app.hub.stats().connections, 1, 'every fuzzed connection is gone from the node')
})

t.test('random bytes after the handshake never crash the server, and a good client is served after each', async t => {
  const { url, app } = await listenApp(t, { maxPayload: MAX_PAYLOAD })
  const port = Number(new URL(url).port)
  const runs = Number(process.env.FUZZ_SOCKETS ?? 100)
  await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.boolean(), async (bytes, endAfter) => {
    const raw = await rawSocket(port)
    raw.socket.write(Buffer.from(bytes))
    if (endAfter) raw.socket.end()
    else raw.socket.destroy()
    await raw.ended
  }), { numRuns: runs })
  const client = await TestClient.connect(`${url}/ws`)
  t.teardown(() => { client.close() })
  await client.op('welcome')
  t.match(await client.request({ op: 'ping' }), { op: 'pong' }, `still serving after ${runs} random sockets`)
  const deadline = Date.now() + 5000
  while (app.hub.stats().connections > 1 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(app.hub.stats().connections, 1, 'the fuzzed connections left nothing behind')
})
