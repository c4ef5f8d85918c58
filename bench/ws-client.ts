import type { Socket } from 'node:net'
import WebSocket from 'ws'
import type { TextHandler } from './client.js'

const HANDSHAKE_TIMEOUT_MS = 15_000

/**
 * The ws package's client with its default options, behind LeanWebSocket's interface: what users run,
 * and it offers permessage-deflate, which the lean client cannot inflate. It costs the load generator
 * far more per frame (stream events, a Buffer per message, an inflate on libuv's pool when compressed).
 */
export class PackageWebSocket {
  /** The close code of the close event (1006 when the TCP connection ended without a close frame). */
  closeCode: number | undefined
  readonly closed: Promise<void>

  private constructor (private readonly ws: WebSocket, readonly socket: Socket) {
    this.closed = new Promise(resolve => ws.once('close', code => {
      this.closeCode = code
      resolve()
    }))
  }

  /** Opens a connection; the handler is made before 'open' returns, so no message can come first. */
  static open (host: string, port: number, path: string, handlerFor: (socket: PackageWebSocket) => TextHandler): Promise<PackageWebSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${host}:${port}${path}`, { handshakeTimeout: HANDSHAKE_TIMEOUT_MS })
      let socket: Socket | undefined
      ws.once('upgrade', response => { socket = response.socket })
      // An error before 'open' fails the connect; a later one ends in the close event, which peers watch.
      ws.on('error', reject)
      ws.once('open', () => {
        const client = new PackageWebSocket(ws, socket as Socket)
        const onText = handlerFor(client)
        ws.on('message', (data: Buffer) => onText(data, 0, data.length, performance.now()))
        resolve(client)
      })
    })
  }

  send (text: string): void {
    this.ws.send(text)
  }

  close (code = 1000): void {
    this.ws.close(code)
  }
}
