import { createHash, randomBytes, randomFillSync } from 'node:crypto'
import { connect, type Socket } from 'node:net'

/**
 * A lean WebSocket client for the load generator, which has one core for up to 200k received frames per
 * second: every microsecond per frame is a fifth of it. So there are no stream events, no Buffer per
 * read and no JSON.parse per message: frames are parsed straight out of each TCP read and the hot path
 * gets a byte range, so a delivery costs a scan for the benchmark marker and a few digit loops.
 */

const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
const HANDSHAKE_TIMEOUT_MS = 15_000

/**
 * A complete text message: buf[start, end), valid only during the call. `receivedAt` is the
 * performance.now() of the read that completed it, taken once per read rather than per frame.
 */
export type TextHandler = (buf: Buffer, start: number, end: number, receivedAt: number) => void

// Client frames must be masked (RFC 6455 §5.3); one refilled pool of random bytes keeps that cheap.
const maskPool = Buffer.allocUnsafe(64 * 1024)
let maskOffset = maskPool.length

function nextMask (target: Buffer, at: number): void {
  if (maskOffset + 4 > maskPool.length) {
    randomFillSync(maskPool)
    maskOffset = 0
  }
  maskPool.copy(target, at, maskOffset, maskOffset + 4)
  maskOffset += 4
}

function encodeClientFrame (opcode: number, payload: Buffer | string): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + 4 + length)
  frame[0] = 0x80 | opcode
  if (headerLength === 2) {
    frame[1] = 0x80 | length
  } else if (headerLength === 4) {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 0x80 | 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  nextMask(frame, headerLength)
  const start = headerLength + 4
  if (typeof payload === 'string') frame.write(payload, start, 'utf8')
  else payload.copy(frame, start)
  const m0 = frame[headerLength] as number
  const m1 = frame[headerLength + 1] as number
  const m2 = frame[headerLength + 2] as number
  const m3 = frame[headerLength + 3] as number
  let i = 0
  for (; i + 3 < length; i += 4) {
    const at = start + i
    frame[at] = (frame[at] as number) ^ m0
    frame[at + 1] = (frame[at + 1] as number) ^ m1
    frame[at + 2] = (frame[at + 2] as number) ^ m2
    frame[at + 3] = (frame[at + 3] as number) ^ m3
  }
  for (; i < length; i++) frame[start + i] = (frame[start + i] as number) ^ (frame[headerLength + (i & 3)] as number)
  return frame
}

// Every connection reads into this one buffer (net's `onread` option), which spares a Buffer and a
// stream 'data' event per read: a read is handled completely before the next one can start, and the
// bytes that must outlive it (a partial frame, a fragment) are copied out.
const readBuffer = Buffer.allocUnsafe(256 * 1024)

export class LeanWebSocket {
  /** The close code the server sent, or 1006 when the TCP connection ended without one. */
  closeCode: number | undefined
  readonly closed: Promise<void>
  /** Errors other than the connection simply ending (protocol violations, resets). */
  error: Error | undefined
  readonly socket: Socket
  private onText: TextHandler | undefined
  /** Until upgraded: the response bytes so far, and what to do with the complete head. */
  private head: Buffer | undefined = Buffer.alloc(0)
  private onHead: ((head: string) => void) | undefined
  private pending: Buffer | undefined
  private fragments: Buffer[] | undefined
  private closeSent = false
  private receivedAt = 0

  private constructor (host: string, port: number) {
    this.socket = connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (length: number, buf: Uint8Array) => {
          this.read(buf as Buffer, length)
          return true
        }
      }
    })
    this.closed = new Promise(resolve => {
      this.socket.once('close', () => {
        this.closeCode ??= 1006
        resolve()
      })
    })
    this.socket.on('error', (error: Error) => { this.error ??= error })
  }

  /**
   * Opens a connection and completes the upgrade; rejects on any failure within the timeout. The handler
   * is made once the socket exists, since frames may arrive in the same read as the upgrade response.
   */
  static open (host: string, port: number, path: string, handlerFor: (socket: LeanWebSocket) => TextHandler): Promise<LeanWebSocket> {
    return new Promise((resolve, reject) => {
      const client = new LeanWebSocket(host, port)
      const key = randomBytes(16).toString('base64')
      const expectedAccept = createHash('sha1').update(key + ACCEPT_GUID).digest('base64')
      let settled = false
      const fail = (error: Error): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        client.socket.destroy()
        reject(error)
      }
      const timer = setTimeout(() => fail(new Error(`upgrade to ${path} timed out`)), HANDSHAKE_TIMEOUT_MS)
      void client.closed.then(() => fail(new Error(`connection closed during the upgrade to ${path}: ${client.error?.message ?? 'no error'}`)))
      client.onHead = response => {
        const accept = /^sec-websocket-accept:\s*(\S+)/im.exec(response)?.[1]
        if (!response.startsWith('HTTP/1.1 101') || accept !== expectedAccept) {
          fail(new Error(`upgrade to ${path} refused: ${response.split('\r\n')[0]}`))
          return
        }
        settled = true
        clearTimeout(timer)
        client.onText = handlerFor(client)
        resolve(client)
      }
      client.socket.once('connect', () => {
        client.socket.write(
          `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
        )
      })
    })
  }

  send (text: string): void {
    this.socket.write(encodeClientFrame(0x1, text))
  }

  /** Starts a close handshake; the promise `closed` resolves when the TCP connection is gone. */
  close (code = 1000): void {
    if (this.closeSent || this.socket.destroyed) return
    this.closeSent = true
    const payload = Buffer.allocUnsafe(2)
    payload.writeUInt16BE(code)
    this.socket.end(encodeClientFrame(0x8, payload))
  }

  private read (chunk: Buffer, chunkLength: number): void {
    this.receivedAt = performance.now()
    if (this.head !== undefined) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, chunkLength)])
      const end = this.head.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = this.head
      this.head = undefined
      this.onHead?.(head.toString('latin1', 0, end))
      if (this.onText !== undefined && head.length > end + 4) this.receive(head.subarray(end + 4), head.length - end - 4)
      return
    }
    this.receive(chunk, chunkLength)
  }

  private receive (chunk: Buffer, chunkLength: number): void {
    let buf = chunk
    let length = chunkLength
    if (this.pending !== undefined) {
      buf = Buffer.concat([this.pending, chunk.subarray(0, chunkLength)])
      length = buf.length
      this.pending = undefined
    }
    let offset = 0
    while (length - offset >= 2) {
      const b0 = buf[offset] as number
      const b1 = buf[offset + 1] as number
      if ((b1 & 0x80) !== 0) {
        this.violation('the server sent a masked frame')
        return
      }
      let payloadLength = b1 & 0x7f
      let headerLength = 2
      if (payloadLength === 126) {
        if (length - offset < 4) break
        payloadLength = buf.readUInt16BE(offset + 2)
        headerLength = 4
      } else if (payloadLength === 127) {
        if (length - offset < 10) break
        payloadLength = buf.readUInt32BE(offset + 2) * 2 ** 32 + buf.readUInt32BE(offset + 6)
        headerLength = 10
      }
      const start = offset + headerLength
      const end = start + payloadLength
      if (end > length) break
      offset = end
      this.frame(b0, buf, start, end)
    }
    if (offset < length) this.pending = Buffer.from(buf.subarray(offset, length))
  }

  private frame (b0: number, buf: Buffer, start: number, end: number): void {
    const fin = (b0 & 0x80) !== 0
    const opcode = b0 & 0x0f
    if (opcode === 0x1 && fin) {
      this.onText?.(buf, start, end, this.receivedAt)
    } else if (opcode === 0x1 || opcode === 0x0) {
      if (this.fragments === undefined) this.fragments = []
      this.fragments.push(Buffer.from(buf.subarray(start, end)))
      if (fin) {
        const whole = Buffer.concat(this.fragments)
        this.fragments = undefined
        this.onText?.(whole, 0, whole.length, this.receivedAt)
      }
    } else if (opcode === 0x8) {
      this.closeCode = end - start >= 2 ? buf.readUInt16BE(start) : 1005
      this.close(this.closeCode === 1005 ? 1000 : this.closeCode)
    } else if (opcode === 0x9) {
      this.socket.write(encodeClientFrame(0xa, buf.subarray(start, end)))
    } else if (opcode !== 0xa) {
      this.violation(`unexpected opcode ${opcode}`)
    }
  }

  private violation (message: string): void {
    this.error ??= new Error(message)
    this.socket.destroy()
  }
}
