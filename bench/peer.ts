import type { Socket } from 'node:net'
import { LeanWebSocket, type TextHandler } from './client.js'
import { PackageWebSocket } from './ws-client.js'

/**
 * The two wire dialects the load generator speaks: Switchboard's protocol v1 (which the bare ws and
 * Fastify baselines speak too) and Socket.IO 4 (Engine.IO v4 packets over a WebSocket).
 */
export type Dialect = 'v1' | 'socketio'

/** One delivery: `sentUs` is the publisher's performance.now() in µs, `receivedAt` the reader's in ms. */
export type DeliverySink = (priority: number, publisher: number, n: number, sentUs: number, receivedAt: number) => void

export const PRIORITY_NAMES = ['critical', 'high', 'normal', 'low'] as const

/** 'lean': bench/client.ts, no extensions; 'ws': the ws package's client with its defaults (it offers permessage-deflate), what users run. */
export const CLIENT_KINDS = ['lean', 'ws'] as const
export type ClientKind = (typeof CLIENT_KINDS)[number]

export function isClientKind (value: string): value is ClientKind {
  return (CLIENT_KINDS as readonly string[]).includes(value)
}

/** What a peer uses of its WebSocket client, whichever it is. */
interface TextSocket {
  readonly socket: Socket
  readonly closed: Promise<void>
  readonly closeCode: number | undefined
  send (text: string): void
  close (): void
}

const OPENERS: Record<ClientKind, (host: string, port: number, path: string, handlerFor: (socket: TextSocket) => TextHandler) => Promise<TextSocket>> = {
  lean: LeanWebSocket.open,
  ws: PackageWebSocket.open
}

/** 'padded': the id and a run of x, which deflate shrinks to nothing; 'records': the id and user records, which compress like real data. */
export type PayloadKind = 'padded' | 'records'

/**
 * Every published payload is `{"bench":"<priority>:<publisher>:<n>:<sentUs>","pad":"…"}` (or `,"users":[…]}`).
 * Receivers scan for the marker instead of parsing the envelope, which differs between servers anyway.
 */
const MARKER = Buffer.from('"bench":"')
const PAYLOAD_OVERHEAD = '{"bench":"","pad":""}'.length
const MARKER_FIRST = MARKER[0] as number
const MARKER_SLACK = 4

/** The marker's offset in buf[start, end), or -1. A plain loop: Buffer#indexOf costs more per call for frames this short. */
function findMarker (buf: Buffer, start: number, end: number): number {
  const last = end - MARKER.length
  outer: for (let i = start; i <= last; i++) {
    if (buf[i] !== MARKER_FIRST) continue
    for (let j = 1; j < MARKER.length; j++) if (buf[i + j] !== MARKER[j]) continue outer
    return i
  }
  return -1
}

/** Builds the data JSON of one message, of about `bytes` when the id leaves room for it. */
export function benchPayload (priority: number, publisher: number, n: number, sentUs: number, bytes: number, kind: PayloadKind = 'padded'): string {
  const id = `${priority}:${publisher}:${n}:${sentUs}`
  if (kind === 'records') return `{"bench":"${id}",${recordsFor(bytes, n)}}`
  return `{"bench":"${id}","pad":"${padding(bytes - PAYLOAD_OVERHEAD - id.length)}"}`
}

let pad = ''
function padding (length: number): string {
  if (length <= 0) return ''
  if (pad.length < length) pad = 'x'.repeat(Math.max(length, 2 * pad.length))
  return pad.slice(0, length)
}

const FIRST_NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Ken', 'Radia', 'Linus', 'Frances', 'John', 'Sophie', 'Hedy']
const LAST_NAMES = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Hamilton', 'Thompson', 'Perlman', 'Torvalds', 'Allen', 'Backus', 'Wilson', 'Lamarr']
const STATUSES = ['online', 'away', 'busy', 'offline']
const RECORD_VARIANTS = 64
/** Room for the id and the envelope around the records. */
const RECORDS_OVERHEAD = 40
const recordCache = new Map<number, string[]>()

/**
 * `"users":[…]` of about `bytes`: pseudo-random user records (ids, names, statuses, numbers) from a
 * fixed seed, one of RECORD_VARIANTS sets per message, so that every run sends the same bytes.
 */
function recordsFor (bytes: number, n: number): string {
  let variants = recordCache.get(bytes)
  if (variants === undefined) {
    let seed = 0x2545f491
    const next = (below: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
      return (seed >>> 8) % below
    }
    const pick = (list: string[]): string => list[next(list.length)] as string
    variants = Array.from({ length: RECORD_VARIANTS }, () => {
      const users: string[] = []
      let length = 0
      while (length < bytes - RECORDS_OVERHEAD) {
        const user = `{"id":${10_000 + next(90_000)},"name":"${pick(FIRST_NAMES)} ${pick(LAST_NAMES)}","status":"${pick(STATUSES)}",` +
          `"score":${next(10_000) / 100},"unread":${next(50)},"lastSeen":${1_764_000_000 + next(1_000_000)}}`
        users.push(user)
        length += user.length + 1
      }
      return `"users":[${users.join(',')}]`
    })
    recordCache.set(bytes, variants)
  }
  return variants[n % RECORD_VARIANTS] as string
}

const CONNECT_TIMEOUT_MS = 15_000

interface Waiter {
  resolve: (value: unknown) => void
  reject: (error: Error) => void
}

type Control = Record<string, unknown>

export class BenchPeer {
  /** Error frames that answered no request of ours (rate limits, not-member, …), by code. */
  readonly errors = new Map<string, number>()
  /** Frames that were neither deliveries nor answers. */
  unexpected = 0
  private readonly waiters = new Map<string, Waiter>()
  private nextRef = 0
  /** Where the benchmark marker was in the last delivery, from the start of its frame's text. */
  private markerOffset = 0
  private ws!: TextSocket
  private greeted!: Waiter

  private constructor (readonly dialect: Dialect, private readonly sink: DeliverySink) {}

  /** Resolves once the server greeted the connection (welcome, or Socket.IO's namespace connect). */
  static async connect (dialect: Dialect, host: string, port: number, sink: DeliverySink, client: ClientKind = 'lean'): Promise<BenchPeer> {
    const peer = new BenchPeer(dialect, sink)
    const greeting = new Promise((resolve, reject) => { peer.greeted = { resolve, reject } })
    // A refusal can arrive with the upgrade response, before anything awaits the greeting.
    greeting.catch(() => {})
    const path = dialect === 'v1' ? '/ws' : '/socket.io/?EIO=4&transport=websocket'
    await OPENERS[client](host, port, path, ws => {
      peer.ws = ws
      return (buf, start, end, receivedAt) => peer.onText(buf, start, end, receivedAt)
    })
    const timer = setTimeout(() => peer.greeted.reject(new Error('no greeting from the server')), CONNECT_TIMEOUT_MS)
    void peer.ws.closed.then(() => peer.failAll(new Error(`connection closed (${peer.ws.closeCode})`)))
    try {
      await greeting
    } finally {
      clearTimeout(timer)
    }
    return peer
  }

  get closeCode (): number | undefined {
    return this.ws.closeCode
  }

  get closed (): Promise<void> {
    return this.ws.closed
  }

  /** Bytes read from the TCP connection so far, upgrade response included: what crossed the wire. */
  get bytesRead (): number {
    return this.ws.socket.bytesRead
  }

  /** With `since` (protocol v1 only), the join recovers what came after that position. */
  join (room: string, since?: { epoch: string, seq: number }): Promise<unknown> {
    const ref = ++this.nextRef
    const sincePart = since === undefined ? '' : `,"since":{"epoch":${JSON.stringify(since.epoch)},"seq":${since.seq}}`
    if (this.dialect === 'v1') this.ws.send(`{"op":"join","room":"${room}"${sincePart},"ref":${ref}}`)
    else this.ws.send(`42${ref}["join","${room}"]`)
    return this.awaitAnswer(ref)
  }

  publish (room: string, dataJson: string, priority: number): void {
    const name = PRIORITY_NAMES[priority] as string
    if (this.dialect === 'v1') this.ws.send(`{"op":"publish","room":"${room}","data":${dataJson},"priority":"${name}"}`)
    else this.ws.send(`42["publish",{"room":"${room}","data":${dataJson},"priority":"${name}"}]`)
  }

  /** Runs a task over the WebSocket (protocol v1 only); resolves with the reply's data. */
  task (name: string, dataJson: string): Promise<unknown> {
    if (this.dialect !== 'v1') throw new Error('tasks are a protocol v1 feature')
    const ref = ++this.nextRef
    this.ws.send(`{"op":"task","name":"${name}","data":${dataJson},"ref":${ref}}`)
    return this.awaitAnswer(ref).then(reply => (reply as Control).data)
  }

  /** Writes everything sent until uncork() in as few syscalls as the socket allows. */
  cork (): void {
    this.ws.socket.cork()
  }

  uncork (): void {
    this.ws.socket.uncork()
  }

  /** Stops reading, so that the kernel buffers fill and the server has to queue or shed. */
  pause (): void {
    this.ws.socket.pause()
  }

  resume (): void {
    this.ws.socket.resume()
  }

  close (): void {
    this.ws.close()
  }

  destroy (): void {
    this.ws.socket.destroy()
  }

  private awaitAnswer (ref: number): Promise<unknown> {
    return new Promise((resolve, reject) => this.waiters.set(String(ref), { resolve, reject }))
  }

  private answer (ref: unknown, ok: boolean, value: unknown): void {
    const key = String(ref)
    const waiter = this.waiters.get(key)
    if (waiter === undefined) {
      if (!ok) this.countError(value)
      else this.unexpected++
      return
    }
    this.waiters.delete(key)
    if (ok) waiter.resolve(value)
    else waiter.reject(new Error(`server error: ${JSON.stringify(value)}`))
  }

  private countError (value: unknown): void {
    const code = String((value as Control | undefined)?.code ?? 'unknown')
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1)
  }

  private failAll (error: Error): void {
    this.greeted.reject(error)
    for (const waiter of this.waiters.values()) waiter.reject(error)
    this.waiters.clear()
  }

  private onText (buf: Buffer, start: number, end: number, receivedAt: number): void {
    // The envelope before the payload keeps its length from one frame to the next (a sequence number
    // may gain a digit), so the scan starts a little before where the marker was last time.
    let at = findMarker(buf, Math.max(start, start + this.markerOffset - MARKER_SLACK), end)
    if (at === -1 && this.markerOffset > MARKER_SLACK) at = findMarker(buf, start, end)
    if (at !== -1) this.markerOffset = at - start
    if (at === -1) {
      const text = buf.toString('utf8', start, end)
      if (this.dialect === 'v1') this.onV1Control(text)
      else this.onSocketIoControl(text)
      return
    }
    let i = at + MARKER.length
    const priority = (buf[i] as number) - 48
    i += 2
    let publisher = 0
    let c: number
    while ((c = buf[i++] as number) !== 58) publisher = publisher * 10 + c - 48
    let n = 0
    while ((c = buf[i++] as number) !== 58) n = n * 10 + c - 48
    let sentUs = 0
    while ((c = buf[i++] as number) !== 34) sentUs = sentUs * 10 + c - 48
    this.sink(priority, publisher, n, sentUs, receivedAt)
  }

  private onV1Control (text: string): void {
    let frame: Control
    try {
      frame = JSON.parse(text) as Control
    } catch {
      this.unexpected++
      return
    }
    switch (frame.op) {
      case 'welcome': this.greeted.resolve(frame); return
      case 'reply': this.answer(frame.ref, true, frame); return
      case 'error': this.answer(frame.ref, false, frame); return
      default: this.unexpected++
    }
  }

  /** Engine.IO packet type first, then (for type 4, message) the Socket.IO packet type. */
  private onSocketIoControl (text: string): void {
    const engineType = text[0]
    if (engineType === '0') {
      this.ws.send('40')
    } else if (engineType === '2') {
      this.ws.send('3')
    } else if (engineType === '4') {
      const packetType = text[1]
      if (packetType === '0') {
        this.greeted.resolve(text)
      } else if (packetType === '3') {
        const bracket = text.indexOf('[')
        const args = JSON.parse(text.slice(bracket)) as unknown[]
        this.answer(text.slice(2, bracket), true, args[0])
      } else if (packetType === '4') {
        this.greeted.reject(new Error(`Socket.IO refused the connection: ${text}`))
      } else {
        this.unexpected++
      }
    } else if (engineType !== '3') {
      this.unexpected++
    }
  }
}
