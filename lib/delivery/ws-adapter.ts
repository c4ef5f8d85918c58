import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { DeflateSettings } from './frame.js'

/**
 * Everything Switchboard takes from `ws` beyond its public API, in one place. The outbox is the one
 * writer of a connection's frames: it writes them, already framed, to the stream under the WebSocket,
 * and the session answers pings through it. `ws` keeps reading, the close handshake and its close
 * timer; it writes only the close frame, and the outbox is closed at that moment (by the session's
 * close, ws's 'error' after a protocol error, or onPeerClose), so nothing can follow it. ws 8 keeps what this needs in
 * private fields; test/lib/delivery/ws-adapter.test.ts fails if an upgrade of `ws` moves them.
 */
interface WsInternals {
  _socket: Socket | null
  _receiver: Receiver | null
  _autoPong: boolean
  _extensions: Record<string, { params: Record<string, unknown> | null } | undefined>
}

function internals (socket: WebSocket): WsInternals {
  return socket as unknown as WsInternals
}

/** The stream under a `ws` socket, for listeners that must run after ws parsed a read chunk. */
export function streamOf (socket: WebSocket): Socket {
  const stream = internals(socket)._socket
  if (stream === null) throw new Error('the WebSocket has no stream yet')
  return stream
}

export interface PeerCloseListener {
  peerClosed (): void
}

const kListener = Symbol('switchboard.peerClose')

interface Receiver {
  on (event: 'conclude', listener: (this: Receiver) => void): unknown
  [kListener]?: PeerCloseListener
}

/** Shared by every receiver, so a connection costs no closure for it. */
function onConclude (this: Receiver): void {
  this[kListener]?.peerClosed()
}

/**
 * Tells `listener` when the peer's close frame has been read. ws answers it with its own close frame
 * at once, in the same callback, so the outbox must stop writing now: this runs right after.
 */
export function onPeerClose (socket: WebSocket, listener: PeerCloseListener): void {
  const receiver = internals(socket)._receiver
  if (receiver === null) throw new Error('the WebSocket has no receiver yet')
  receiver[kListener] = listener
  receiver.on('conclude', onConclude)
}

interface UpgradeResponse {
  detachSocket (socket: Socket): void
}

/**
 * Lets the upgrade's HTTP request and response be collected, which a connection otherwise keeps for
 * its whole life: the response stays assigned to the stream, and `listeners` (the host's 'error'
 * listeners, such as @fastify/websocket's) close over the request and reply. They are removed, so the
 * socket must have an 'error' listener of its own by now.
 */
export function releaseUpgrade (socket: WebSocket, listeners: readonly Function[]): void {
  const stream = streamOf(socket) as Socket & { _httpMessage?: UpgradeResponse | null }
  stream._httpMessage?.detachSocket(stream)
  for (const listener of listeners) socket.removeListener('error', listener as (error: Error) => void)
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
