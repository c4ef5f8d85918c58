import { EventEmitter } from 'node:events'
import { FakeSink } from './fake-sink.js'

/** The stream under a `ws` socket, as the session sees it: a sink that also emits the chunks it reads. */
export class RawSocket extends FakeSink {
  private readonly events = new EventEmitter()

  on (event: string, listener: (...args: unknown[]) => void): this {
    this.events.on(event, listener)
    return this
  }

  read (chunk: Buffer): void {
    this.events.emit('data', chunk)
  }
}

/** Just enough of a `ws` WebSocket: its events, the private fields ws-adapter.ts reads, and the raw stream beneath. */
export class FakeWebSocket extends EventEmitter {
  readonly CLOSED = 3
  readyState = 1
  _autoPong = true
  readonly _extensions = {}
  readonly _receiver = new EventEmitter()
  constructor (readonly _socket: RawSocket) { super() }
}

