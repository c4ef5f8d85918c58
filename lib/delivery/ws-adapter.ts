import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { DeflateSettings } from './frame.js'
import type { FrameSink } from './outbox.js'

/**
 * Everything Switchboard takes from `ws` beyond its public API, in one place. The outbox is the one
 * writer of a connection's frames: it writes them, already framed, to the stream under the WebSocket,
 * and answers pings itself. `ws` keeps reading, the close handshake and its close timer; it writes only
 * the close frame, after the outbox was closed, so nothing can follow it. ws 8 keeps what this needs in
 * private fields; test/lib/delivery/ws-adapter.test.ts fails if an upgrade of `ws` moves them.
 */
interface WsInternals {
  _socket: Socket | null
  _autoPong: boolean
  _extensions: Record<string, { params: Record<string, unknown> | null } | undefined>
}

const OPEN = 1

function internals (socket: WebSocket): WsInternals {
  return socket as unknown as WsInternals
}

/** The stream under a `ws` socket, for listeners that must run after ws parsed a read chunk. */
export function streamOf (socket: WebSocket): Socket {
  const stream = internals(socket)._socket
  if (stream === null) throw new Error('the WebSocket has no stream yet')
  return stream
}

/** Stops `ws` from answering pings with its own writer: the session queues the pongs in the outbox. */
export function takeOverPongs (socket: WebSocket): void {
  internals(socket)._autoPong = false
}

/**
 * What the connection negotiated for permessage-deflate, or undefined when it did not. A window of 8
 * bits is left uncompressed: zlib cannot make raw deflate streams with it.
 */
export function negotiatedDeflate (socket: WebSocket, threshold: number): DeflateSettings | undefined {
  const params = internals(socket)._extensions['permessage-deflate']?.params
  if (params === null || params === undefined) return undefined
  const bits = params.server_max_window_bits
  const windowBits = typeof bits === 'number' ? bits : 15
  return windowBits < 9 ? undefined : { windowBits, threshold }
}

/** The outbox's view of a WebSocket: writable only while the WebSocket is open and its stream takes writes. */
export class WebSocketSink implements FrameSink {
  constructor (private readonly socket: WebSocket, private readonly stream: Socket) {}

  get writable (): boolean {
    return this.socket.readyState === OPEN && this.stream.writable
  }

  get writableLength (): number {
    return this.stream.writableLength
  }

  cork (): void {
    this.stream.cork()
  }

  uncork (): void {
    this.stream.uncork()
  }

  write (chunk: Buffer, callback?: (error?: Error | null) => void): boolean {
    return this.stream.write(chunk, callback)
  }
}
