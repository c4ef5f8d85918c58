import type { PriorityName } from '../protocol/priority.js'
import type { PublishOp } from '../protocol/schemas.js'
import { Emitter } from './emitter.js'
import { SeenSeqs } from './seen-seqs.js'

export interface RoomMessage<T> {
  seq: number
  data: T
  priority: PriorityName
  ts: number
  from?: string
}

export interface PresenceMember {
  client: string
  user?: string
  joinedAt: number
  info?: unknown
}

export interface RoomEvents<T> extends Record<string, unknown> {
  message: RoomMessage<T>
  /** A rejoin replayed what was missed: nothing was lost. */
  recovered: { replayedFrom: number, top: number }
  /** What was missed could not be replayed (or the stream began a new life): reload the room's state. */
  reset: { reason: 'epoch_changed' | 'too_old' | 'too_many' }
  /** Seqs the server had to drop for this connection; filled from history with `fillGaps`. */
  gap: { ranges: [number, number][], reason: string, filled: number[] }
  joined: { client: string, user?: string }
  left: { client: string, user?: string }
  error: Error
}

export interface RoomOptions {
  /** Receive joined/left events. */
  presence?: boolean
  /** Rejoin after a reconnect with `since` and replay what was missed (default true). */
  recover?: boolean
  /** Fetch messages named in gap frames from history (superseded ones need none). */
  fillGaps?: boolean
  /** Shown to others in presence. */
  info?: Record<string, unknown>
}

export type PublishOptions = Pick<PublishOp, 'priority' | 'ttlMs' | 'key' | 'id'>

/** What a room needs from its client: requests, and publishes that survive a reconnect. */
export interface RoomTransport {
  request (op: Record<string, unknown>): Promise<Record<string, unknown>>
  publish (op: Record<string, unknown>): Promise<{ seq: number }>
  forget (room: string): void
}

type Frame = Record<string, unknown> & { op: string }

/** One room of a Switchboard client: it keeps its place in the stream across reconnects. */
export class Room<T = unknown> extends Emitter<RoomEvents<T>> {
  private epoch: string | undefined
  private seen: SeenSeqs | undefined
  private left = false

  constructor (readonly name: string, private readonly options: RoomOptions, private readonly transport: RoomTransport) {
    super()
  }

  /** The last seq below which every message was handled, and its epoch; undefined before the first join. */
  get position (): { seq: number, epoch: string } | undefined {
    return this.epoch === undefined || this.seen === undefined ? undefined : { seq: this.seen.watermark, epoch: this.epoch }
  }

  /** Sent by the client on every (re)connect. */
  async join (): Promise<void> {
    if (this.left) return
    const position = this.options.recover === false ? undefined : this.position
    const op: Record<string, unknown> = { op: 'join', room: this.name }
    if (position !== undefined) op.since = position
    if (this.options.presence === true) op.presence = true
    if (this.options.info !== undefined) op.info = this.options.info
    const reply = await this.transport.request(op)
    const top = reply.seq as number
    const epoch = reply.epoch as string
    if (position !== undefined && reply.recovered === true) {
      this.emit('recovered', { replayedFrom: position.seq + 1, top })
    } else {
      if (position !== undefined) this.emit('reset', { reason: (reply.reason ?? 'epoch_changed') as RoomEvents<T>['reset']['reason'] })
      if (this.seen === undefined) this.seen = new SeenSeqs(top)
      else this.seen.reset(top)
    }
    this.epoch = epoch
  }

  /** Frames of this room, as the client routes them. */
  handle (frame: Frame): void {
    switch (frame.op) {
      case 'message': return this.onMessage(frame)
      case 'gap': return void this.onGap(frame)
      case 'epoch':
        this.epoch = frame.epoch as string
        this.seen?.reset(0)
        return this.emit('reset', { reason: 'epoch_changed' })
      case 'joined':
      case 'left':
        return this.emit(frame.op, { client: frame.client as string, ...(frame.user === undefined ? {} : { user: frame.user as string }) })
    }
  }

  /** Resolves with the message's seq. A publish cut off by a reconnect is retried with the same id, so it is stored once. */
  publish (data: T, options: PublishOptions = {}): Promise<{ seq: number }> {
    return this.transport.publish({ op: 'publish', room: this.name, data, ...options })
  }

  async history (query: { since?: number, limit?: number, reverse?: boolean } = {}): Promise<{ seq: number, epoch: string, messages: RoomMessage<T>[] }> {
    const reply = await this.transport.request({ op: 'history', room: this.name, ...query })
    return { seq: reply.seq as number, epoch: reply.epoch as string, messages: reply.messages as RoomMessage<T>[] }
  }

  async presence (query: { limit?: number, cursor?: string } = {}): Promise<{ total: number, members: PresenceMember[], cursor?: string }> {
    const reply = await this.transport.request({ op: 'presence', room: this.name, ...query })
    const page = { total: reply.total as number, members: reply.members as PresenceMember[] }
    return reply.cursor === undefined ? page : { ...page, cursor: reply.cursor as string }
  }

  async leave (): Promise<void> {
    this.left = true
    this.transport.forget(this.name)
    await this.transport.request({ op: 'leave', room: this.name })
  }

  private onMessage (frame: Frame): void {
    const seq = frame.seq as number
    if (this.seen !== undefined && !this.seen.mark(seq)) return
    const message: RoomMessage<T> = { seq, data: frame.data as T, priority: frame.priority as PriorityName, ts: frame.ts as number }
    if (frame.from !== undefined) message.from = frame.from as string
    this.emit('message', message)
  }

  private async onGap (frame: Frame): Promise<void> {
    const ranges = frame.ranges as [number, number][]
    const reason = frame.reason as string
    const filled: number[] = []
    if (this.options.fillGaps === true && reason !== 'superseded') {
      for (const [from, to] of ranges) {
        try {
          const { messages } = await this.history({ since: from - 1, limit: Math.min(1000, to - from + 1) })
          for (const message of messages) {
            if (message.seq > to || this.seen?.has(message.seq) === true) continue
            this.seen?.mark(message.seq)
            filled.push(message.seq)
            this.emit('message', message)
          }
        } catch (error) {
          this.emit('error', error as Error)
        }
      }
    }
    // What was neither delivered nor filled will not come: it no longer holds the watermark back.
    for (const [from, to] of ranges) for (let seq = from; seq <= to; seq++) this.seen?.mark(seq)
    this.emit('gap', { ranges, reason, filled })
  }
}
