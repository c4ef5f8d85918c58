import { randomBytes } from 'node:crypto'
import type { Identity } from '../auth/jwt.js'
import type { Grant } from '../auth/permissions.js'
import { performance } from 'node:perf_hooks'
import type { WebSocket } from 'ws'
import { Opcode, createControlFrame, createFrame, encodeControlFrame, type OutgoingFrame } from '../delivery/frame.js'
import type { DropReason, OutboxListeners, PriorityOutbox } from '../delivery/outbox.js'
import { negotiatedDeflate, onPeerClose, streamOf, takeOverPongs, type PeerCloseListener } from '../delivery/ws-adapter.js'
import { decodeClientFrame, encodeError, encodeGap, encodeReply, encodeReplyWithJson, encodeWelcome } from '../protocol/codec.js'
import { isErrorCode, type ErrorCode } from '../protocol/errors.js'
import { Priority } from '../protocol/priority.js'
import type { ClientOp, Ref } from '../protocol/schemas.js'
import { isPromise } from '../engine/composed.js'
import { EngineUnavailableError } from '../engine/errors.js'
import { TaskError } from '../tasks/types.js'
import { OP_HANDLERS } from './ops/index.js'
import { OpError, type Answer, type OpHandler, type OpSession, type SessionContext } from './ops/types.js'

export type { SessionContext, SessionSettings } from './ops/types.js'

/** Close codes this server uses (RFC 6455 §7.4 plus the private range for slow consumers). */
export const CloseCode = {
  goingAway: 1001,
  policyViolation: 1008,
  messageTooBig: 1009,
  tokenExpired: 4001,
  slowConsumer: 4008
} as const

/** Rejected ops in one second, as a multiple of the rate, at which a connection is closed with 1008. */
const FLOOD_FACTOR = 5

const idPrefix = randomBytes(4).toString('hex')
let idCounter = 0

type Range = [number, number]

interface GapReport {
  frame: OutgoingFrame
  ranges: Range[]
}

/** Seqs and earlier ranges as sorted, merged inclusive ranges: [1,2,3,7] → [[1,3],[7,7]]. */
function toRanges (seqs: number[], earlier: Range[] = []): Range[] {
  const all: Range[] = [...earlier, ...seqs.map((seq): Range => [seq, seq])].sort((a, b) => a[0] - b[0])
  const ranges: Range[] = []
  for (const [from, to] of all) {
    const last = ranges[ranges.length - 1]
    if (last !== undefined && from <= last[1] + 1) last[1] = Math.max(last[1], to)
    else ranges.push([from, to])
  }
  return ranges
}

/**
 * One WebSocket connection speaking protocol v1: it decodes client frames, runs each op's handler
 * (lib/node/ops/) and answers in one place. Listeners are shared functions that find the session
 * through a symbol on the socket, so a connection costs no closures; the map of joined rooms is
 * created on first use. Every frame the server sends, the welcome and pongs included, goes through the
 * outbox, and every room message the outbox drops is reported to the client in a gap frame.
 */
export class ClientSession implements OpSession, OutboxListeners, PeerCloseListener {
  readonly id = `${idPrefix}${(++idCounter).toString(36)}`
  /** Cleared by each heartbeat sweep, set by the peer's pong. */
  alive = true
  private joined: Map<string, number> | undefined
  private readonly outbox: PriorityOutbox
  private tokens: number
  private refilledAt = performance.now()
  private floodWindowStart = 0
  private rejectedInWindow = 0
  private disposed = false
  private closedPromise: Promise<void> | undefined
  /** Seqs dropped since the last gap frames, by reason and room. */
  private gaps: Map<DropReason, Map<string, number[]>> | undefined
  /** The last gap frame per reason and room, grown in place while it still waits in the outbox. */
  private gapReports: Map<string, GapReport> | undefined
  user: string | undefined
  userInfo: unknown
  grants: readonly Grant[] = []
  /** Whether limits.opened ran: a constructor that threw before it must not be counted as closed. */
  private counted = false
  /** Closes the connection with 4001 at the token's exp, unless a refresh moves it. */
  private expiry: ReturnType<typeof setTimeout> | undefined

  constructor (private readonly socket: WebSocket, private readonly context: SessionContext, identity?: Identity, private readonly ip = '') {
    this.tokens = context.settings.rateLimitBurst
    const socketWithSession = socket as WebSocket & { [kSession]?: ClientSession }
    socketWithSession[kSession] = this
    socket.on('message', onSocketMessage)
    socket.on('ping', onSocketPing)
    socket.on('pong', onSocketPong)
    socket.on('error', onSocketError)
    socket.once('close', onSocketClose)
    takeOverPongs(socket)
    onPeerClose(socket, this)
    const stream = streamOf(socket)
    // ws parses a whole chunk in its own 'data' listener, registered before this one, so by now every
    // frame of the chunk was handled: what they produced is written at once instead of after the return
    // through the stream code, yet still in one write per socket (see WritePump.flushQuiet).
    stream.on('data', context.outboxes.flushQuiet)
    const { heartbeatMs, maxPayload, perMessageDeflate, perMessageDeflateThreshold } = context.settings
    const deflate = perMessageDeflate ? negotiatedDeflate(socket, perMessageDeflateThreshold) : undefined
    this.outbox = context.outboxes.create(stream, this, deflate)
    if (identity !== undefined) this.authenticate(identity)
    context.limits.opened(ip, this.user)
    this.counted = true
    context.hub.connect(this)
    this.send(encodeWelcome(this.id, heartbeatMs, maxPayload))
  }

  authenticate (identity: Identity): void {
    this.user = identity.user
    this.userInfo = identity.info
    this.grants = identity.grants
    clearTimeout(this.expiry)
    if (identity.expiresAt !== undefined) this.expireAt(identity.expiresAt)
  }

  /** Node fires a timer of more than 2^31 − 1 ms at once: a far exp is reached in steps. */
  private expireAt (expiresAt: number): void {
    const delay = expiresAt - Date.now()
    this.expiry = setTimeout(() => {
      if (Date.now() < expiresAt) {
        this.expireAt(expiresAt)
        return
      }
      this.context.events.info('token_expired', { client: this.id, user: this.user }, 'closed a connection whose token expired (4001)')
      void this.close(CloseCode.tokenExpired, 'token expired')
    }, Math.min(Math.max(0, delay), 2 ** 31 - 1))
    this.expiry.unref()
  }

  get rooms (): Map<string, number> {
    if (this.joined === undefined) this.joined = new Map()
    return this.joined
  }

  isIn (room: string): boolean {
    return this.joined?.has(room) === true
  }

  deliver (frame: OutgoingFrame): void {
    this.outbox.enqueue(frame)
  }

  deliverLive (frame: OutgoingFrame): void {
    this.outbox.enqueueLive(frame)
  }

  forgetRoom (room: string): void {
    if (this.gapReports === undefined) return
    for (const key of this.gapReports.keys()) {
      if (key.endsWith(`\u0000${room}`)) this.gapReports.delete(key)
    }
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

  /**
   * After a protocol error (bad frame, invalid UTF-8) ws has written its close frame with the RFC 6455
   * code: nothing more is written, and the peer's answer is not waited for.
   */
  protocolFailure (error: Error): void {
    this.context.outboxes.release(this.outbox)
    this.context.events.info('protocol_failure', { client: this.id, reason: error.message }, 'closed a connection that broke the WebSocket protocol')
    this.socket.terminate()
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
    const handler = OP_HANDLERS[op.op] as OpHandler<ClientOp>
    let answer
    try {
      answer = handler.run(op, this, this.context)
    } catch (error) {
      this.refuse(op.ref, error)
      return
    }
    if (isPromise(answer)) {
      answer.then(result => { this.answer(op.ref, handler, result) }, (error: unknown) => { this.refuse(op.ref, error) })
    } else {
      this.answer(op.ref, handler, answer)
    }
  }

  private answer (ref: Ref | undefined, handler: OpHandler<ClientOp>, answer: Answer | undefined): void {
    if (answer === undefined) return
    if (ref !== undefined || handler.alwaysAnswered === true) {
      if (answer.payload !== undefined) this.send(answer.payload)
      else if (answer.json !== undefined) this.send(encodeReplyWithJson(ref, answer.fields ?? {}, answer.json))
      else this.send(encodeReply(ref, answer.fields))
    }
    answer.after?.()
  }

  private refuse (ref: Ref | undefined, error: unknown): void {
    if (error instanceof OpError) {
      this.fail(ref, error.code, error.message)
    } else if (error instanceof EngineUnavailableError) {
      this.fail(ref, 'unavailable', 'the engine is unavailable (Redis cannot be reached): not done, try again')
    } else if (error instanceof TaskError) {
      // A cancelled task belongs to a connection that is gone: nobody is left to tell.
      if (isErrorCode(error.code)) this.fail(ref, error.code, error.message)
    } else {
      this.context.events.warn('op_failed', { client: this.id, err: error }, 'an op failed')
      this.fail(ref, 'internal', 'the op could not be completed')
    }
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

  /** ws answered the peer's close frame with its own: nothing more may be written. */
  peerClosed (): void {
    this.context.outboxes.release(this.outbox)
  }

  /** The outbox dropped a room message: the seqs are collected, the gap frames go out at the end of the callback. */
  dropped (frame: OutgoingFrame, reason: DropReason): void {
    if (frame.room === undefined || reason === 'closed' || this.disposed) return
    if (this.gaps === undefined) {
      this.gaps = new Map()
      queueMicrotask(() => { this.sendGaps() })
    }
    let byRoom = this.gaps.get(reason)
    if (byRoom === undefined) {
      byRoom = new Map()
      this.gaps.set(reason, byRoom)
    }
    const seqs = byRoom.get(frame.room)
    if (seqs === undefined) byRoom.set(frame.room, [frame.seq])
    else seqs.push(frame.seq)
  }

  /**
   * One gap frame per reason and room: while the previous one still waits in the outbox it grows in
   * place, so a stalled reader gets one report, not one per turn. Critical, so a gap frame is never
   * shed: if even it cannot be queued, the connection closes with 4008.
   */
  private sendGaps (): void {
    const gaps = this.gaps
    this.gaps = undefined
    if (gaps === undefined || this.disposed) return
    if (this.gapReports === undefined) this.gapReports = new Map()
    const counts = this.context.hub.streams
    for (const [reason, byRoom] of gaps) {
      for (const [room, seqs] of byRoom) {
        const key = `${reason}\u0000${room}`
        const waiting = this.gapReports.get(key)
        if (waiting !== undefined) {
          const ranges = toRanges(seqs, waiting.ranges)
          const frame = createFrame(encodeGap(room, ranges, reason), Priority.critical)
          if (this.outbox.replaceQueued(waiting.frame, frame)) {
            waiting.frame = frame
            waiting.ranges = ranges
            continue
          }
        }
        const ranges = toRanges(seqs)
        const frame = createFrame(encodeGap(room, ranges, reason), Priority.critical)
        this.gapReports.set(key, { frame, ranges })
        this.outbox.enqueue(frame)
        counts.count(counts.gaps, reason)
      }
    }
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

  /** The outbox could not take a critical frame and closed itself. */
  slowConsumer (): void {
    this.context.events.warn('slow_consumer', { client: this.id }, 'closed a connection too slow to take a critical message (4008)')
    void this.close(CloseCode.slowConsumer, 'slow consumer')
  }

  /** Runs once, when the socket has closed: leaves every room, drops the queue, cancels queued tasks. */
  dispose (): void {
    if (this.disposed) return
    this.disposed = true
    clearTimeout(this.expiry)
    const { hub, outboxes, workerPool, limits } = this.context
    if (this.counted) limits.closed(this.ip, this.user)
    hub.disconnect(this, this.joined?.keys() ?? [])
    this.joined = undefined
    outboxes.release(this.outbox)
    workerPool.cancelOwner(this)
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
