import { createFrame, type OutgoingFrame } from '../delivery/frame.js'
import { afterBoth, isPromise, then } from '../engine/composed.js'
import type {
  Awaitable,
  Broadcast,
  Engine,
  HistoryPage,
  HistoryQuery,
  PresenceEvent,
  PresencePage,
  PublishOutcome,
  Publication,
  Recovery,
  RecoveryFailure,
  StreamPosition
} from '../engine/types.js'
import { encodeBroadcast, encodeEpoch, encodeGap, encodeMessage, encodePresenceEvent } from '../protocol/codec.js'
import { Priority } from '../protocol/priority.js'
import { RoomIndex, type Connection, type LocalRoom } from './room-index.js'

export type { Connection } from './room-index.js'

/** Inbound traffic counters in plain numbers, exported by the metrics plugin at scrape time. */
export class TrafficStats {
  received = 0
  readonly protocolErrors = new Map<string, number>()

  protocolError (code: string): void {
    this.protocolErrors.set(code, (this.protocolErrors.get(code) ?? 0) + 1)
  }
}

/** Stream counters in plain numbers, exported at scrape time. */
export class StreamStats {
  readonly recoveries = new Map<'recovered' | RecoveryFailure, number>()
  readonly gaps = new Map<string, number>()

  count<K> (map: Map<K, number>, key: K, by = 1): void {
    map.set(key, (map.get(key) ?? 0) + by)
  }
}

export interface PublishOptions {
  priority: Priority
  ttlMs?: number | undefined
  /** Latest-value conflation key, scoped to the room. */
  key?: string | undefined
  /** Client id of the publisher; absent for server-side publishes. */
  from?: string | undefined
  /** The publisher's `sub`, when it connected with a token. */
  user?: string | undefined
  /** Idempotency id (see PublishRequest). */
  id?: string | undefined
}

export interface PublishResult extends StreamPosition {
  duplicate: boolean
  /** Connections on this node that the message was handed to. */
  recipients: number
}

export interface JoinOptions {
  /** Recover from this position: live messages wait until the replay is queued. */
  since?: StreamPosition | undefined
  /** Receive joined/left events of the room. */
  watch: boolean
  user?: string | undefined
  info?: unknown
}

export interface JoinResult {
  position: StreamPosition
  recovery: Recovery | undefined
}

export interface HubStats {
  connections: number
  rooms: number
  memberships: number
}

export interface HubOptions {
  /** Most messages a recovering join replays. */
  recoveryMax: number
}

function publishResult ({ seq, epoch, duplicate }: PublishOutcome, recipients: number): PublishResult {
  return { seq, epoch, duplicate, recipients: duplicate ? 0 : recipients }
}

/**
 * Engine work nobody waits for: a leave has happened whatever the engine says. If it fails (Redis is
 * down), presence expires the member after PRESENCE_TTL_MS, since this node stops refreshing it.
 */
function inBackground (work: Awaitable<void>): void {
  if (isPromise(work)) work.catch(() => {})
}

/** Epoch notices, told apart from other notices when a pending join's frames are sorted out. */
const epochNotices = new WeakSet<OutgoingFrame>()

function conflationKeyOf (room: string, key: string | undefined): string | undefined {
  return key === undefined ? undefined : `${room}\u0000${key}`
}

/** The frame a room message travels in; a replayed one drops its ttl, which was for live delivery. */
function messageFrame (publication: Publication, live: boolean): OutgoingFrame {
  return createFrame(encodeMessage(publication), publication.priority, live ? publication.ttlMs : 0,
    conflationKeyOf(publication.room, publication.key), publication.room, publication.seq)
}

/**
 * The node: connections, the local room index, and the path through the engine. A publish goes to the
 * engine, which stores it and hands it back (through its broker) to every node with members of the
 * room; this node encodes it once and queues the same frame in each local member's outbox.
 */
export class Hub {
  private readonly index = new RoomIndex()
  private readonly live = new Set<Connection>()
  private presenceBatch: PresenceEvent[] | undefined
  readonly traffic = new TrafficStats()
  readonly streams = new StreamStats()

  constructor (readonly engine: Engine, private readonly options: HubOptions) {
    engine.broker.handle({
      publication: publication => { this.deliver(publication) },
      broadcast: broadcast => { this.deliverBroadcast(broadcast) },
      presence: event => { this.queuePresence(event) },
      epoch: (room, epoch) => {
        const local = this.index.get(room)
        if (local !== undefined) this.noteEpoch(local, room, epoch)
      },
      lost: (room, from, to) => { this.reportLost(room, from, to) }
    })
  }

  connect (connection: Connection): void {
    this.live.add(connection)
  }

  /** Removes the connection from the node and from each of the given rooms. */
  disconnect (connection: Connection, rooms: Iterable<string>): void {
    for (const room of rooms) this.leave(connection, room)
    this.live.delete(connection)
  }

  /**
   * Joins the connection to the room and reads where the stream is, or what it missed since
   * `options.since`. The caller answers the join, then calls finishJoin to queue the replay and
   * whatever was published meanwhile.
   */
  /** Whether the connection is in the room: 'pending' while a recovering join is being served. */
  membership (connection: Connection, room: string): 'live' | 'pending' | undefined {
    return this.index.has(connection, room)
  }

  join (connection: Connection, room: string, options: JoinOptions): Awaitable<JoinResult> {
    const { engine } = this
    const rejoin = this.index.has(connection, room) !== undefined
    const created = this.index.add(connection, room, options.since !== undefined, options.watch)
    const local = this.index.get(room) as LocalRoom
    // Subscribed before the history is read, so nothing published meanwhile falls between the two; a
    // join while the first one's subscription is under way waits for it too.
    if (created) local.subscribed = engine.broker.subscribe(room)
    this.syncWatch(room, local)
    // A watcher's join is answered once the room's presence events reach this node.
    const ready = options.watch && local.watched !== false ? afterBoth(local.watched, local.subscribed) : local.subscribed
    // Presence and the stream's position do not depend on each other: asked at once, a networked
    // engine answers both in one round trip.
    return then(ready, () => afterBoth(rejoin ? undefined : this.enterPresence(connection, room, options), this.position(room, options.since)))
  }

  /** The room's presence events come to this node while it has a watcher in the room, and only then. */
  private syncWatch (room: string, local: LocalRoom): void {
    const watching = local.watchers !== undefined && local.watchers.size > 0
    if (watching && local.watched === false) {
      local.watched = this.engine.broker.watch(room)
    } else if (!watching && local.watched !== false) {
      local.watched = false
      inBackground(this.engine.broker.unwatch(room))
    }
  }

  /** The stream's position for a join, with the replay after `since` when it asks for one. */
  private position (room: string, since: StreamPosition | undefined): Awaitable<JoinResult> {
    const { engine } = this
    if (since === undefined) {
      return then(engine.history.position(room), position => this.positioned(room, { position, recovery: undefined }))
    }
    return then(engine.history.recover(room, since, this.options.recoveryMax), recovery => {
      this.streams.count(this.streams.recoveries, recovery.recovered ? 'recovered' : recovery.reason)
      const result = this.positioned(room, { position: recovery.position, recovery })
      // The replay covers everything up to its top: the join stays pending until the broker has handed
      // this node those seqs too, so that the seq filter of finishJoin drops every copy of them.
      const caughtUp = recovery.recovered ? engine.broker.caughtUp?.(room, recovery.position) : undefined
      return caughtUp === undefined ? result : then(caughtUp, () => result)
    })
  }

  /** Queues the replay, then the live frames that arrived during the join, each seq once. */
  finishJoin (connection: Connection, room: string, result: JoinResult): void {
    const waiting = this.index.activate(connection, room)
    // Not pending any more: it left or disconnected while the join was served, or joined live.
    if (waiting === undefined) return
    const top = result.position.seq
    if (result.recovery?.recovered === true) {
      for (const publication of result.recovery.publications) connection.deliver(messageFrame(publication, false))
    }
    // Notices (seq 0) always pass; after an epoch notice the stream began again, and its seqs restart.
    let newLife = false
    for (const frame of waiting) {
      if (frame.seq === 0) {
        connection.deliver(frame)
        if (epochNotices.has(frame)) newLife = true
      } else if (newLife || frame.seq > top) {
        connection.deliver(frame)
      }
    }
  }

  /** Returns whether the connection was in the room. */
  leave (connection: Connection, room: string): boolean {
    const local = this.index.get(room)
    const outcome = this.index.remove(connection, room)
    if (outcome === 'absent') return false
    if (outcome === 'emptied') inBackground(this.engine.broker.unsubscribe(room))
    // An emptied room is gone from the index, but its object still says whether it was watched.
    this.syncWatch(room, local as LocalRoom)
    inBackground(this.engine.presence.leave(room, connection.id))
    inBackground(this.engine.broker.presence({ room, kind: 'left', client: connection.id }))
    return true
  }

  publish (room: string, data: unknown, options: PublishOptions): Awaitable<PublishResult> {
    const recipients = this.localMembers(room)
    const outcome = this.engine.publish({
      room,
      data: JSON.stringify(data) ?? 'null',
      priority: options.priority,
      ts: Date.now(),
      from: options.from,
      user: options.user,
      ttlMs: options.ttlMs,
      key: options.key,
      id: options.id
    })
    if (isPromise(outcome)) return outcome.then(result => publishResult(result, recipients))
    return publishResult(outcome, recipients)
  }

  /** Delivers to every connection of every node; returns how many are on this one. */
  broadcast (data: unknown, priority: Priority, ttlMs?: number): Awaitable<number> {
    const recipients = this.live.size
    return then(this.engine.broker.broadcast({ data: JSON.stringify(data) ?? 'null', priority, ts: Date.now(), ttlMs }), () => recipients)
  }

  history (room: string, query: HistoryQuery): Awaitable<HistoryPage> {
    return this.engine.history.read(room, query)
  }

  presence (room: string, limit: number, cursor?: string): Awaitable<PresencePage> {
    return this.engine.presence.page(room, limit, cursor)
  }

  /** Members of the room on this node, pending ones included. */
  localMembers (room: string): number {
    const local = this.index.get(room)
    return local === undefined ? 0 : local.members.size + (local.pending?.size ?? 0)
  }

  /** Room names with their member counts on this node. */
  listRooms (): { room: string, members: number }[] {
    return this.index.list()
  }

  /** Every connection of this node, for the heartbeat sweep and shutdown. */
  connections (): IterableIterator<Connection> {
    return this.live.values()
  }

  stats (): HubStats {
    return { connections: this.live.size, rooms: this.index.size, memberships: this.index.memberships }
  }

  /** A connection that left (or disconnected) while its join was under way does not enter presence, or leaves it again. */
  private enterPresence (connection: Connection, room: string, options: JoinOptions): Awaitable<void> {
    if (this.index.has(connection, room) === undefined) return undefined
    return then(this.engine.presence.join(room, { client: connection.id, user: options.user, joinedAt: Date.now(), info: options.info }), () => {
      if (this.index.has(connection, room) === undefined) {
        inBackground(this.engine.presence.leave(room, connection.id))
        return
      }
      inBackground(this.engine.broker.presence({ room, kind: 'joined', client: connection.id, user: options.user }))
    })
  }

  private positioned (room: string, result: JoinResult): JoinResult {
    const local = this.index.get(room)
    if (local !== undefined) this.noteEpoch(local, room, result.position.epoch)
    return result
  }

  private deliver (publication: Publication): void {
    const room = this.index.get(publication.room)
    if (room === undefined) return
    if (room.epoch !== publication.epoch) this.noteEpoch(room, publication.room, publication.epoch)
    const frame = messageFrame(publication, true)
    for (const member of room.members) member.deliverLive(frame)
    if (room.pending !== undefined) for (const waiting of room.pending.values()) waiting.push(frame)
  }

  /**
   * The stream began a new life while members stayed joined (it expired, or was evicted): its seqs
   * start again at 1, so members are told before the first message of the new epoch.
   */
  private noteEpoch (room: LocalRoom, roomName: string, epoch: string): void {
    const known = room.epoch
    room.epoch = epoch
    if (known === undefined || known === epoch) return
    const frame = createFrame(encodeEpoch(roomName, epoch), Priority.critical)
    epochNotices.add(frame)
    for (const member of room.members) member.deliver(frame)
    if (room.pending !== undefined) for (const waiting of room.pending.values()) waiting.push(frame)
  }

  /** Messages that never reached this node and that history no longer has: members are told, as for any drop. */
  private reportLost (roomName: string, from: number, to: number): void {
    const room = this.index.get(roomName)
    if (room === undefined) return
    const frame = createFrame(encodeGap(roomName, [[from, to]], 'lost'), Priority.critical)
    let members = room.members.size
    for (const member of room.members) member.deliver(frame)
    if (room.pending !== undefined) {
      for (const waiting of room.pending.values()) waiting.push(frame)
      members += room.pending.size
    }
    this.streams.count(this.streams.gaps, 'lost', members)
  }

  private deliverBroadcast (broadcast: Broadcast): void {
    const frame = createFrame(encodeBroadcast(broadcast.data, broadcast.priority, broadcast.ts), broadcast.priority, broadcast.ttlMs)
    for (const connection of this.live) connection.deliverLive(frame)
  }

  /** Presence events go out once per turn, never inside the join or publish that caused them. */
  private queuePresence (event: PresenceEvent): void {
    if (this.index.get(event.room)?.watchers === undefined) return
    if (this.presenceBatch === undefined) {
      this.presenceBatch = []
      setImmediate(() => { this.flushPresence() })
    }
    this.presenceBatch.push(event)
  }

  /**
   * Each event is encoded once and shared by the room's watchers. Its conflation key is the member,
   * so a slow watcher keeps only the latest of a member's joined/left events.
   */
  private flushPresence (): void {
    const batch = this.presenceBatch ?? []
    this.presenceBatch = undefined
    for (const event of batch) {
      const watchers = this.index.get(event.room)?.watchers
      if (watchers === undefined || watchers.size === 0) continue
      const frame = createFrame(encodePresenceEvent(event.kind, event.room, event.client, event.user), Priority.normal, 0,
        `presence\u0000${event.room}\u0000${event.client}`)
      for (const watcher of watchers) {
        if (watcher.id !== event.client) watcher.deliver(frame)
      }
    }
  }
}
