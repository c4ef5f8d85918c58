import { performance } from 'node:perf_hooks'
import { constants as zlib, deflateRawSync } from 'node:zlib'
import type { Priority } from '../protocol/priority.js'

/**
 * Server-to-client WebSocket frames (RFC 6455 §5.2), built once and shared by every recipient.
 * Server frames are never masked, so the same bytes are valid on every connection; building them here
 * lets a fan-out write the bytes straight to each socket instead of asking `ws` to frame them again.
 */
const FIN = 0x80
/** Set on the first frame of a compressed message (RFC 7692 §6). */
const RSV1 = 0x40
export const Opcode = { text: 0x1, close: 0x8, ping: 0x9, pong: 0xa } as const
/** Every deflate block of a message flushed with Z_SYNC_FLUSH ends with these bytes, which RFC 7692 §7.2.1 drops. */
const DEFLATE_TAIL_LENGTH = 4

function headerLength (payloadLength: number): number {
  return payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10
}

function writeHeader (frame: Buffer, firstByte: number, payloadLength: number): number {
  frame[0] = firstByte
  if (payloadLength < 126) {
    frame[1] = payloadLength
    return 2
  }
  if (payloadLength < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(payloadLength, 2)
    return 4
  }
  frame[1] = 127
  frame.writeUInt32BE(Math.floor(payloadLength / 2 ** 32), 2)
  frame.writeUInt32BE(payloadLength >>> 0, 6)
  return 10
}

export function encodeTextFrame (payload: string): Buffer {
  const payloadLength = Buffer.byteLength(payload)
  const frame = Buffer.allocUnsafe(headerLength(payloadLength) + payloadLength)
  frame.write(payload, writeHeader(frame, FIN | Opcode.text, payloadLength), 'utf8')
  return frame
}

/** A ping, pong or close frame; control payloads are at most 125 bytes. */
export function encodeControlFrame (opcode: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > 125) throw new RangeError('a control frame carries at most 125 bytes')
  const frame = Buffer.allocUnsafe(2 + payload.length)
  writeHeader(frame, FIN | opcode, payload.length)
  payload.copy(frame, 2)
  return frame
}

/** What one connection negotiated for permessage-deflate, as far as the server's sending side needs it. */
export interface DeflateSettings {
  /** LZ77 window the server may use, 9–15 (server_max_window_bits; 15 when the client set none). */
  readonly windowBits: number
  /** Text payloads shorter than this many bytes are sent uncompressed. */
  readonly threshold: number
}

/**
 * One encoded server frame. A publish builds exactly one and every recipient's outbox queues the same
 * object, so a fan-out to N sockets costs N array slots, not N copies. Compression is the same: each
 * message is deflated on its own (no context takeover), so one compressed copy per window size serves
 * every connection that negotiated it.
 */
export class OutgoingFrame {
  /** Compressed copies by window size: usually one per app, a few when clients ask for smaller windows. */
  private deflated: Map<number, Buffer> | undefined

  constructor (
    readonly bytes: Buffer,
    readonly priority: Priority,
    /** performance.now() at creation, for the enqueue-to-write histogram and ttl. */
    readonly createdAt: number,
    /** performance.now() deadline after which the frame is dropped instead of sent; 0 means never. */
    readonly expiresAt: number,
    /** Latest-value conflation: a newer queued frame with the same key supersedes this one. */
    readonly conflationKey: string | undefined,
    /** Text data frames may be compressed; control frames never are. */
    private readonly compressible: boolean,
    /** The room stream this message belongs to, so a connection that does not get it is told its seq. */
    readonly room: string | undefined = undefined,
    readonly seq = 0
  ) {}

  /** The bytes to write to a connection with these deflate settings (undefined: none negotiated). */
  wire (deflate: DeflateSettings | undefined): Buffer {
    if (deflate === undefined || !this.compressible) return this.bytes
    const payloadOffset = this.payloadOffset()
    if (this.bytes.length - payloadOffset < deflate.threshold) return this.bytes
    if (this.deflated === undefined) this.deflated = new Map()
    let wire = this.deflated.get(deflate.windowBits)
    if (wire === undefined) {
      const compressed = deflateFrame(this.bytes.subarray(payloadOffset), deflate.windowBits)
      // Incompressible payloads (already compressed, random) go out as they are.
      wire = compressed.length < this.bytes.length ? compressed : this.bytes
      this.deflated.set(deflate.windowBits, wire)
    }
    return wire
  }

  private payloadOffset (): number {
    const lengthByte = (this.bytes[1] as number) & 0x7f
    return lengthByte < 126 ? 2 : lengthByte === 126 ? 4 : 10
  }
}

function deflateFrame (payload: Buffer, windowBits: number): Buffer {
  const compressed = deflateRawSync(payload, { windowBits, finishFlush: zlib.Z_SYNC_FLUSH })
  const length = compressed.length - DEFLATE_TAIL_LENGTH
  const frame = Buffer.allocUnsafe(headerLength(length) + length)
  compressed.copy(frame, writeHeader(frame, FIN | RSV1 | Opcode.text, length), 0, length)
  return frame
}

export function createFrame (payload: string, priority: Priority, ttlMs = 0, conflationKey?: string, room?: string, seq = 0): OutgoingFrame {
  const createdAt = performance.now()
  return new OutgoingFrame(encodeTextFrame(payload), priority, createdAt, ttlMs > 0 ? createdAt + ttlMs : 0, conflationKey, true, room, seq)
}

/** A ping, pong or close frame for the outbox: never compressed, never expired. */
export function createControlFrame (bytes: Buffer, priority: Priority): OutgoingFrame {
  return new OutgoingFrame(bytes, priority, performance.now(), 0, undefined, false)
}
