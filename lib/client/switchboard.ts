import type { PriorityName } from '../protocol/priority.js'
import type { TaskOp } from '../protocol/schemas.js'
import { backoffDelay } from './backoff.js'
import { Emitter } from './emitter.js'
import { SwitchboardError, type ClientErrorCode } from './errors.js'
import { Room, type RoomOptions, type RoomTransport } from './room.js'

/** The part of the WebSocket API the client uses: browsers' native one and `ws` both have it. */
export interface WebSocketLike {
  readonly readyState: number
  send (data: string): void
  close (code?: number, reason?: string): void
  addEventListener (type: 'open' | 'close' | 'message' | 'error', listener: (event: { data?: unknown, code?: number, reason?: string }) => void): void
  /** `ws` in Node only: server pings are invisible to browsers. */
  on?: (event: 'ping', listener: () => void) => unknown
}

export type WebSocketConstructor = new (url: string) => WebSocketLike

export interface SwitchboardOptions {
  /** Sent as the `token` query parameter of the upgrade. */
  token?: string
  /** Called before every connect; wins over `token`. */
  getToken?: () => string | Promise<string>
  /** Backoff bounds between reconnects, in ms (defaults 500 and 20 000). */
  minReconnectDelay?: number
  maxReconnectDelay?: number
  /** How long a request waits for its answer, in ms (default 10 000). */
  timeout?: number
  /** A WebSocket implementation, e.g. `ws` in Node 20; the global one by default. */
  WebSocket?: WebSocketConstructor
}

export type ConnectionState = 'disconnected' | 'connecting' | 'connected'

export interface SwitchboardEvents extends Record<string, unknown> {
  state: ConnectionState
  connected: { client: string }
  disconnected: { code: number, reason: string }
  broadcast: { data: unknown, priority: PriorityName, ts: number }
  error: Error
}

/** Close codes after which reconnecting would only repeat the refusal: abuse, and 4400–4499 (reserved for "do not reconnect"). */
function mayReconnect (code: number): boolean {
  return code !== 1008 && !(code >= 4400 && code <= 4499)
}

/** Closes the server uses when a fresh connection will do: shutdown of one node, a slow consumer. */
function reconnectAtOnce (code: number): boolean {
  return code === 1001 || code === 4008
}

/** The `exp` of a JWT in ms, read without verifying (the server verifies); undefined when there is none. */
function expiryOf (token: string): number | undefined {
  try {
    const payload = token.split('.')[1] ?? ''
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'))
    const exp = (JSON.parse(json) as { exp?: unknown }).exp
    return typeof exp === 'number' ? exp * 1000 : undefined
  } catch {
    return undefined
  }
}

function randomId (): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto
  return crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`
}

type Frame = Record<string, unknown> & { op: string }

/**
 * A join refused for the moment (the server's engine is down or slow, or the server is busy): tried
 * again with backoff while connected, since until it succeeds the room receives nothing.
 */
const RETRIED_JOIN_CODES: ReadonlySet<ClientErrorCode> = new Set<ClientErrorCode>(['unavailable', 'timeout', 'rate_limited', 'overloaded', 'under_pressure'])

interface Pending {
  resolve (reply: Frame): void
  reject (error: SwitchboardError): void
  timer: ReturnType<typeof setTimeout>
}

/**
 * A Switchboard connection: reconnects with backoff, rejoins its rooms with `since` so that missed
 * messages are replayed exactly once, and answers requests with the server's error codes.
 */
export class Switchboard extends Emitter<SwitchboardEvents> {
  private socket: WebSocketLike | undefined
  private current: ConnectionState = 'disconnected'
  private wanted = false
  private attempt = 0
  private nextRef = 0
  private readonly pending = new Map<number, Pending>()
  private readonly rooms = new Map<string, Room<never>>()
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined
  private livenessTimer: ReturnType<typeof setInterval> | undefined
  private refreshTimer: ReturnType<typeof setTimeout> | undefined
  /** Rooms whose join was refused for the moment, by name: the timer of the next try. */
  private readonly joinRetries = new Map<string, ReturnType<typeof setTimeout>>()
  private token: string | undefined
  private lastReceived = 0
  private readyWaiters: { resolve: () => void, reject: (error: Error) => void }[] = []
  private readonly WebSocketImpl: WebSocketConstructor
  /** This connection's id, from the welcome frame. */
  client: string | undefined

  constructor (readonly url: string, private readonly options: SwitchboardOptions = {}) {
    super()
    const impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (impl === undefined) throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. the ws package)')
    this.WebSocketImpl = impl
  }

  get state (): ConnectionState {
    return this.current
  }

  connect (): void {
    if (this.wanted) return
    this.wanted = true
    this.attempt = 0
    void this.open()
  }

  /** Closes for good: no reconnect; pending requests fail with `disconnected`. */
  disconnect (): void {
    this.wanted = false
    clearTimeout(this.reconnectTimer)
    this.socket?.close(1000, 'client disconnect')
    this.teardown(1000, 'client disconnect')
    for (const waiter of this.readyWaiters.splice(0)) waiter.reject(new SwitchboardError('disconnected', 'disconnect() was called'))
  }

  /** Resolves once connected (at once if it is). */
  ready (): Promise<void> {
    if (this.current === 'connected') return Promise.resolve()
    if (!this.wanted) return Promise.reject(new SwitchboardError('disconnected', 'call connect() first'))
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }))
  }

  /** A room of this connection, joined now if connected and again on every reconnect. */
  room<T = unknown> (name: string, options: RoomOptions = {}): Room<T> {
    const existing = this.rooms.get(name)
    if (existing !== undefined) return existing as unknown as Room<T>
    const room = new Room<T>(name, options, this.transport)
    this.rooms.set(name, room as unknown as Room<never>)
    if (this.current === 'connected') this.enter(room as unknown as Room<never>)
    return room
  }

  /** Sends an op with a fresh ref; resolves with the reply, rejects with a SwitchboardError. */
  request (op: Record<string, unknown>): Promise<Frame> {
    const socket = this.socket
    if (socket === undefined || this.current !== 'connected') {
      return Promise.reject(new SwitchboardError('disconnected', 'not connected'))
    }
    const ref = ++this.nextRef
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref)
        reject(new SwitchboardError('timeout', `no answer to ${String(op.op)} within ${this.options.timeout ?? 10_000} ms`))
      }, this.options.timeout ?? 10_000)
      this.pending.set(ref, { resolve, reject, timer })
      socket.send(JSON.stringify({ ...op, ref }))
    })
  }

  async task<R = unknown> (name: string, data?: unknown, options: Pick<TaskOp, 'priority' | 'retries' | 'timeoutMs' | 'key'> = {}): Promise<R> {
    const reply = await this.request({ op: 'task', name, data, ...options })
    return reply.data as R
  }

  async broadcast (data: unknown, options: { priority?: PriorityName } = {}): Promise<{ recipients: number }> {
    const reply = await this.request({ op: 'broadcast', data, ...options })
    return { recipients: reply.recipients as number }
  }

  private readonly transport: RoomTransport = {
    request: op => this.request(op),
    publish: op => this.publishOnce({ ...op, id: op.id ?? randomId() }),
    forget: room => {
      this.rooms.delete(room)
      clearTimeout(this.joinRetries.get(room))
      this.joinRetries.delete(room)
    }
  }

  /** The id stays the same across attempts, so the server stores the message once. */
  private async publishOnce (op: Record<string, unknown>): Promise<{ seq: number }> {
    for (;;) {
      await this.ready()
      try {
        const reply = await this.request(op)
        return { seq: reply.seq as number }
      } catch (error) {
        if (!(error instanceof SwitchboardError) || error.code !== 'disconnected') throw error
      }
    }
  }

  private setState (state: ConnectionState): void {
    if (this.current === state) return
    this.current = state
    this.emit('state', state)
  }

  private async open (): Promise<void> {
    this.setState('connecting')
    let url = this.url
    try {
      const token = this.options.getToken !== undefined ? await this.options.getToken() : this.options.token
      this.token = token
      if (token !== undefined) url += `${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`
    } catch (error) {
      this.emit('error', error as Error)
      this.scheduleReconnect(0)
      return
    }
    if (!this.wanted) return
    const socket = new this.WebSocketImpl(url)
    this.socket = socket
    socket.addEventListener('message', event => { if (this.socket === socket) this.receive(String(event.data)) })
    socket.addEventListener('close', event => { if (this.socket === socket) this.closed(event.code ?? 1006, event.reason ?? '') })
    socket.addEventListener('error', () => { if (this.socket === socket) this.emit('error', new Error('WebSocket error')) })
    socket.on?.('ping', () => { this.lastReceived = Date.now() })
  }

  private receive (text: string): void {
    this.lastReceived = Date.now()
    let frame: Frame
    try {
      frame = JSON.parse(text) as Frame
    } catch {
      this.emit('error', new Error(`unreadable frame: ${text.slice(0, 100)}`))
      return
    }
    if (typeof frame.ref === 'number' && (frame.op === 'reply' || frame.op === 'error' || frame.op === 'pong')) {
      const waiting = this.pending.get(frame.ref)
      if (waiting !== undefined) {
        this.pending.delete(frame.ref)
        clearTimeout(waiting.timer)
        if (frame.op === 'error') waiting.reject(new SwitchboardError(frame.code as ClientErrorCode, frame.message as string))
        else waiting.resolve(frame)
      }
      return
    }
    switch (frame.op) {
      case 'welcome': return this.welcomed(frame)
      case 'broadcast': return this.emit('broadcast', { data: frame.data, priority: frame.priority as PriorityName, ts: frame.ts as number })
      case 'error': return this.emit('error', new SwitchboardError(frame.code as ClientErrorCode, frame.message as string))
      default:
        if (typeof frame.room === 'string') this.rooms.get(frame.room)?.handle(frame)
    }
  }

  private welcomed (frame: Frame): void {
    this.client = frame.client as string
    this.attempt = 0
    this.setState('connected')
    this.watchLiveness(frame.heartbeatMs as number)
    this.scheduleRefresh()
    for (const room of this.rooms.values()) this.enter(room)
    this.emit('connected', { client: this.client })
    for (const waiter of this.readyWaiters.splice(0)) waiter.resolve()
  }

  /**
   * Browsers do not see the server's pings, so a quiet connection sends an application ping each
   * heartbeat; nothing at all for two heartbeats means the connection is dead.
   */
  private watchLiveness (heartbeatMs: number): void {
    clearInterval(this.livenessTimer)
    this.lastReceived = Date.now()
    this.livenessTimer = setInterval(() => {
      const silent = Date.now() - this.lastReceived
      if (silent >= 2 * heartbeatMs) this.socket?.close(4000, 'heartbeat missed')
      else if (silent >= heartbeatMs) this.socket?.send('{"op":"ping"}')
    }, heartbeatMs)
  }

  /**
   * With `getToken`, a new token is sent ({"op":"refresh"}) 10 s before the current one expires, so the
   * server does not close the connection with 4001; if that fails, the 4001 close reconnects with a fresh one.
   */
  private scheduleRefresh (): void {
    clearTimeout(this.refreshTimer)
    const getToken = this.options.getToken
    const expiresAt = this.token === undefined ? undefined : expiryOf(this.token)
    if (getToken === undefined || expiresAt === undefined) return
    this.refreshTimer = setTimeout(async () => {
      try {
        const token = await getToken()
        await this.request({ op: 'refresh', token })
        this.token = token
        this.scheduleRefresh()
      } catch (error) {
        this.emit('error', error as Error)
      }
    }, Math.max(1000, expiresAt - Date.now() - 10_000))
  }

  private closed (code: number, reason: string): void {
    this.teardown(code, reason)
    if (!this.wanted) return
    if (!mayReconnect(code)) {
      this.wanted = false
      for (const waiter of this.readyWaiters.splice(0)) waiter.reject(new SwitchboardError('disconnected', `closed with ${code}: ${reason}`))
      return
    }
    this.scheduleReconnect(reconnectAtOnce(code) && this.attempt === 0 ? 0 : undefined)
  }

  /** Joins a room; a refusal is reported as an error, and one for the moment is tried again. */
  private enter (room: Room<never>, attempt = 0): void {
    room.join().catch((error: unknown) => {
      this.emit('error', error as Error)
      if (!(error instanceof SwitchboardError) || !RETRIED_JOIN_CODES.has(error.code)) return
      if (this.current !== 'connected' || this.rooms.get(room.name) !== room) return
      const delay = backoffDelay(attempt, this.options.minReconnectDelay ?? 500, this.options.maxReconnectDelay ?? 20_000)
      this.joinRetries.set(room.name, setTimeout(() => {
        this.joinRetries.delete(room.name)
        if (this.current === 'connected' && this.rooms.get(room.name) === room) this.enter(room, attempt + 1)
      }, delay))
    })
  }

  private teardown (code: number, reason: string): void {
    clearInterval(this.livenessTimer)
    clearTimeout(this.refreshTimer)
    // The next welcome joins every room again.
    for (const timer of this.joinRetries.values()) clearTimeout(timer)
    this.joinRetries.clear()
    this.socket = undefined
    for (const [ref, waiting] of this.pending) {
      clearTimeout(waiting.timer)
      waiting.reject(new SwitchboardError('disconnected', `the connection closed (${code}) before the answer came`))
      this.pending.delete(ref)
    }
    const wasConnected = this.current === 'connected'
    this.setState('disconnected')
    if (wasConnected) this.emit('disconnected', { code, reason })
  }

  private scheduleReconnect (delay = backoffDelay(this.attempt, this.options.minReconnectDelay ?? 500, this.options.maxReconnectDelay ?? 20_000)): void {
    this.attempt++
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = setTimeout(() => { if (this.wanted) void this.open() }, delay)
  }
}
