import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { WebSocket } from 'ws'
import { Opcode, createControlFrame, createFrame, encodeControlFrame, type OutgoingFrame } from '../delivery/frame.js'
import type { OutboxRegistry, PriorityOutbox } from '../delivery/outbox.js'
import { WebSocketSink, negotiatedDeflate, streamOf, takeOverPongs } from '../delivery/ws-adapter.js'
import type { ConnectionEvents } from './connection-events.js'
import type { Hub, Member } from './hub.js'
import { Priority } from '../protocol/priority.js'
import {
  decodeClientFrame,
  encodeError,
  encodePong,
  encodeReply,
  encodeWelcome,
  priorityOf,
  type BroadcastOp,
  type ClientOp,
  type PublishOp,
  type Ref,
  type TaskOp
} from '../protocol/codec.js'
import type { ErrorCode } from '../protocol/errors.js'
import { TaskError, type TaskPool } from '../tasks/types.js'

/** Close codes this server uses (RFC 6455 §7.4 plus the private range for slow consumers). */
export const CloseCode = {
  goingAway: 1001,
  policyViolation: 1008,
  messageTooBig: 1009,
  slowConsumer: 4008
} as const

export interface SessionSettings {
  maxPayload: number
  maxRoomsPerConnection: number
  rateLimitPerSec: number
  rateLimitBurst: number
  heartbeatMs: number
  allowClientBroadcast: boolean
  defaultTask: string
  perMessageDeflate: boolean
  perMessageDeflateThreshold: number
}

/** What every session of one app shares. */
export interface SessionContext {
  readonly hub: Hub
  readonly outboxes: OutboxRegistry
  readonly tasks: TaskPool
  readonly settings: SessionSettings
  readonly events: ConnectionEvents
  isDraining (): boolean
}

/** Rejected ops in one second, as a multiple of the rate, at which a connection is closed with 1008. */
const FLOOD_FACTOR = 5

const idPrefix = randomBytes(4).toString('hex')
let idCounter = 0

/**
 * One WebSocket connection speaking protocol v1. Listeners are shared functions that find the
 * session through a symbol on the socket, so a connection costs no closures; the room set is created
 * on first use. Every frame the server sends, the welcome and pongs included, goes through the outbox.
 */
export class ClientSession implements Member {
  readonly id = `${idPrefix}${(++idCounter).toString(36)}`
  /** Cleared by each heartbeat sweep, set by the peer's pong. */
  alive = true
  private rooms: Set<string> | undefined
  private readonly outbox: PriorityOutbox
  private tokens: number
  private refilledAt = performance.now()
  private floodWindowStart = 0
  private rejectedInWindow = 0
  private disposed = false
  private closedPromise: Promise<void> | undefined

  constructor (private readonly socket: WebSocket, private readonly context: SessionContext) {
    this.tokens = context.settings.rateLimitBurst
    const socketWithSession = socket as WebSocket & { [kSession]?: ClientSession }
    socketWithSession[kSession] = this
    socket.on('message', onSocketMessage)
    socket.on('ping', onSocketPing)
    socket.on('pong', onSocketPong)
    socket.on('error', onSocketError)
    socket.once('close', onSocketClose)
    takeOverPongs(socket)
    const stream = streamOf(socket)
    // ws parses a whole chunk in its own 'data' listener, registered before this one, so by now every
    // frame of the chunk was handled: what they produced is written at once instead of after the return
    // through the stream code, yet still in one write per socket (see WritePump.flushQuiet).
    stream.on('data', context.outboxes.flushQuiet)
    const { heartbeatMs, maxPayload, perMessageDeflate, perMessageDeflateThreshold } = context.settings
    const deflate = perMessageDeflate ? negotiatedDeflate(socket, perMessageDeflateThreshold) : undefined
    this.outbox = context.outboxes.create(new WebSocketSink(socket, stream), () => { this.closeSlowConsumer() }, deflate)
    context.hub.connect(this)
    this.send(encodeWelcome(this.id, heartbeatMs, maxPayload))
  }

  deliver (frame: OutgoingFrame): void {
    this.outbox.enqueue(frame)
  }

  private inRoom (room: string): boolean {
    return this.rooms?.has(room) === true
  }

  /** Frames still queued are dropped (counted as closed): nothing may follow the close frame. */
  close (code: number, reason: string): Promise<void> {
    if (this.closedPromise === undefined) {
      // The released outbox stays attached, so later deliveries are refused and counted, not written.
      this.context.outboxes.release(this.outbox)
      this.closedPromise = new Promise(resolve => {
        if (this.socket.readyState === this.socket.CLOSED) resolve()
        else this.socket.once('close', () => resolve())
      })
      this.socket.close(code, reason)
    }
    return this.closedPromise
  }

  terminate (): void {
    this.socket.terminate()
  }

  /** Terminates a peer that missed the previous pong; otherwise queues the sweep's shared ping. */
  heartbeat (ping: OutgoingFrame): void {
    if (!this.alive) {
      this.context.events.info('heartbeat_timeout', { client: this.id }, 'terminated a connection that missed its pong')
      this.terminate()
      return
    }
    this.alive = false
    this.outbox.enqueue(ping)
  }

  /** ws no longer answers pings (see takeOverPongs): the pong queues behind what was sent before it. */
  answerPing (data: Buffer): void {
    if (data.length <= 125) this.outbox.enqueue(createControlFrame(encodeControlFrame(Opcode.pong, data), Priority.critical))
  }

  /** ws closes the connection itself after a protocol error (bad frame, invalid UTF-8): stop writing first. */
  protocolFailure (error: Error): void {
    this.context.outboxes.release(this.outbox)
    this.context.events.info('protocol_failure', { client: this.id, reason: error.message }, 'closed a connection that broke the WebSocket protocol')
  }

  handleMessage (data: Buffer, isBinary: boolean): void {
    const { hub, settings } = this.context
    hub.traffic.received++
    if (data.length > settings.maxPayload) {
      // Only reached when a host's @fastify/websocket allows larger frames than ours.
      this.context.events.info('message_too_big', { client: this.id, bytes: data.length }, 'closed a connection that sent a frame over MAX_PAYLOAD')
      void this.close(CloseCode.messageTooBig, 'message too big')
      return
    }
    if (isBinary) {
      this.fail(undefined, 'bad_request', 'binary frames are not supported; send JSON text frames')
      return
    }
    const decoded = decodeClientFrame(data.toString(), settings)
    if (!decoded.ok) {
      this.fail(decoded.ref, 'bad_request', decoded.message)
      return
    }
    const op = decoded.value
    if (!this.takeToken()) {
      this.fail(op.ref, 'rate_limited', `more than ${settings.rateLimitPerSec} ops per second`)
      return
    }
    this.dispatch(op)
  }

  private dispatch (op: ClientOp): void {
    switch (op.op) {
      case 'join': return this.join(op.room, op.ref)
      case 'leave': return this.leave(op.room, op.ref)
      case 'publish': return this.publish(op)
      case 'say': return this.say(op.text)
      case 'broadcast': return this.broadcast(op)
      case 'task': return this.runTask(op)
      case 'ping': return this.send(encodePong(op.ref))
    }
  }

  private join (room: string, ref: Ref | undefined): void {
    const { hub, settings } = this.context
    if (this.rooms === undefined) this.rooms = new Set()
    if (!this.rooms.has(room) && this.rooms.size >= settings.maxRoomsPerConnection) {
      this.fail(ref, 'too_many_rooms', `a connection may join at most ${settings.maxRoomsPerConnection} rooms`)
      return
    }
    this.rooms.add(room)
    const seq = hub.join(this, room)
    if (ref !== undefined) this.send(encodeReply(ref, { room, seq }))
  }

  private leave (room: string, ref: Ref | undefined): void {
    if (this.rooms?.delete(room) === true) this.context.hub.leave(this, room)
    if (ref !== undefined) this.send(encodeReply(ref, { room }))
  }

  private publish (op: PublishOp): void {
    if (!this.inRoom(op.room)) {
      this.fail(op.ref, 'not_member', `join ${op.room} before publishing to it`)
      return
    }
    const { seq } = this.context.hub.publish(op.room, op.data, {
      priority: priorityOf(op.priority),
      ttlMs: op.ttlMs,
      key: op.key,
      from: this.id
    })
    if (op.ref !== undefined) this.send(encodeReply(op.ref, { seq }))
  }

  private say (text: string): void {
    if (this.rooms === undefined || this.rooms.size === 0) {
      this.fail(undefined, 'not_member', 'join a room before msg:')
      return
    }
    for (const room of this.rooms) {
      this.context.hub.publish(room, text, { priority: Priority.normal, from: this.id })
    }
  }

  private broadcast (op: BroadcastOp): void {
    if (!this.context.settings.allowClientBroadcast) {
      this.fail(op.ref, 'forbidden', 'client broadcast is disabled (ALLOW_CLIENT_BROADCAST=false)')
      return
    }
    const recipients = this.context.hub.broadcast(op.data, priorityOf(op.priority))
    if (op.ref !== undefined) this.send(encodeReply(op.ref, { recipients }))
  }

  /** A task's outcome is always answered, ref or not, since the client asked for a result. */
  private runTask (op: TaskOp): void {
    const { tasks } = this.context
    if (this.context.isDraining()) {
      this.fail(op.ref, 'shutting_down', 'the server is shutting down')
      return
    }
    tasks.submit({
      name: op.name,
      data: op.data,
      priority: priorityOf(op.priority),
      retries: op.retries,
      timeoutMs: op.timeoutMs,
      key: op.key,
      owner: this
    }).then(
      result => { this.send(encodeReply(op.ref, { data: result ?? null })) },
      (error: unknown) => {
        if (error instanceof TaskError) {
          if (error.code !== 'cancelled') this.fail(op.ref, error.code, error.message)
        } else {
          this.fail(op.ref, 'internal', 'task could not be run')
        }
      }
    )
  }

  /** Answers go through the outbox at critical priority: they are small and must not be shed. */
  private send (payload: string): void {
    if (this.disposed) return
    this.outbox.enqueue(createFrame(payload, Priority.critical))
  }

  private fail (ref: Ref | undefined, code: ErrorCode, message: string): void {
    this.context.hub.traffic.protocolError(code)
    this.send(encodeError(ref, code, message))
  }

  private takeToken (): boolean {
    const { rateLimitPerSec, rateLimitBurst } = this.context.settings
    const now = performance.now()
    this.tokens = Math.min(rateLimitBurst, this.tokens + (now - this.refilledAt) * rateLimitPerSec / 1000)
    this.refilledAt = now
    if (this.tokens >= 1) {
      this.tokens--
      return true
    }
    if (now - this.floodWindowStart >= 1000) {
      this.floodWindowStart = now
      this.rejectedInWindow = 0
    }
    if (++this.rejectedInWindow === FLOOD_FACTOR * rateLimitPerSec) {
      this.context.events.warn('flood', { client: this.id, rejectedOps: this.rejectedInWindow }, 'closed a connection that kept exceeding the rate limit (1008)')
      void this.close(CloseCode.policyViolation, 'rate limit exceeded')
    }
    return false
  }

  private closeSlowConsumer (): void {
    this.context.events.warn('slow_consumer', { client: this.id }, 'closed a connection too slow to take a critical message (4008)')
    void this.close(CloseCode.slowConsumer, 'slow consumer')
  }

  /** Runs once, when the socket has closed: leaves every room, drops the queue, cancels queued tasks. */
  dispose (): void {
    if (this.disposed) return
    this.disposed = true
    const { hub, outboxes, tasks } = this.context
    hub.disconnect(this, this.rooms ?? [])
    this.rooms = undefined
    outboxes.release(this.outbox)
    tasks.cancelOwner(this)
  }
}

const kSession = Symbol('switchboard.session')

function sessionOf (socket: WebSocket): ClientSession {
  return (socket as WebSocket & { [kSession]: ClientSession })[kSession]
}

function onSocketMessage (this: WebSocket, data: Buffer, isBinary: boolean): void {
  sessionOf(this).handleMessage(data, isBinary)
}

function onSocketPing (this: WebSocket, data: Buffer): void {
  sessionOf(this).answerPing(data)
}

function onSocketError (this: WebSocket, error: Error): void {
  sessionOf(this).protocolFailure(error)
}

function onSocketPong (this: WebSocket): void {
  sessionOf(this).alive = true
}

function onSocketClose (this: WebSocket): void {
  sessionOf(this).dispose()
}
