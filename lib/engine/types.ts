import type { PlainHistogram } from '../metrics/histogram.js'
import type { Priority } from '../protocol/priority.js'
import type { SequencerStats } from './sequencer.js'

/** A value now (the memory engine) or later (engines behind a network); callers handle both. */
export type Awaitable<T> = T | Promise<T>

/** What a publisher asks to store and deliver. `data` is already JSON text: it is encoded once. */
export interface PublishRequest {
  readonly room: string
  readonly data: string
  readonly priority: Priority
  /** Publisher's wall clock, ms since the epoch. */
  readonly ts: number
  /** Client id of the publisher; absent for server-side publishes. */
  readonly from?: string | undefined
  /** The publisher's `sub`, when it connected with a token. */
  readonly user?: string | undefined
  /** Delivery deadline in the outbox; history keeps the message regardless. */
  readonly ttlMs?: number | undefined
  /** Latest-value conflation key, scoped to the room. */
  readonly key?: string | undefined
  /** Idempotency id: a repeat within IDEMPOTENCY_TTL_MS is not stored or delivered again. */
  readonly id?: string | undefined
}

/** A stored message: the request with its place in the room's stream. */
export interface Publication extends PublishRequest {
  readonly seq: number
  readonly epoch: string
}

/** Where a room's stream is: its latest seq (0 before the first message) and its epoch. */
export interface StreamPosition {
  readonly seq: number
  readonly epoch: string
}

export interface PublishOutcome extends StreamPosition {
  /** The id was seen before: nothing was stored or delivered, seq is the original one. */
  readonly duplicate: boolean
}

export interface HistoryQuery {
  /** Messages with a seq greater than this; from the oldest kept when absent (newest with reverse). */
  readonly since?: number | undefined
  readonly limit: number
  /** Newest first. */
  readonly reverse?: boolean | undefined
}

export interface HistoryPage {
  readonly position: StreamPosition
  readonly publications: readonly Publication[]
}

export type RecoveryFailure = 'epoch_changed' | 'too_old' | 'too_many'

export type Recovery =
  | { readonly recovered: true, readonly position: StreamPosition, readonly publications: readonly Publication[] }
  | { readonly recovered: false, readonly position: StreamPosition, readonly reason: RecoveryFailure }

/** What the store counts; a store that keeps streams elsewhere (Redis) counts only its duplicates. */
export interface HistoryStats {
  duplicates: number
  streams?: number
  messages?: number
  bytes?: number
  evictedStreams?: number
  /** Publish ids remembered for IDEMPOTENCY_TTL_MS (stores that count them). */
  idempotencyRecords?: number
}

/**
 * A room's stream: seq assignment, bounded history and idempotency ids. `append` is one atomic step,
 * so an engine that can (Redis) assigns the seq, appends and checks the id in one round trip.
 */
export interface HistoryStore {
  append (request: PublishRequest): Awaitable<{ publication: Publication, duplicate: boolean }>
  /** The stream's position; a room without a stream gets one, so that a join fixes the epoch it reports. */
  position (room: string): Awaitable<StreamPosition>
  read (room: string, query: HistoryQuery): Awaitable<HistoryPage>
  /** Everything after `since` if it is all still kept and at most `max` messages. */
  recover (room: string, since: StreamPosition, max: number): Awaitable<Recovery>
  stats (): HistoryStats
  close (): Awaitable<void>
}

/** A global message to every connection of every node; not part of any stream. */
export interface Broadcast {
  readonly data: string
  readonly priority: Priority
  readonly ts: number
  readonly ttlMs?: number | undefined
}

/** A member came or went; sent to the room's connections that asked for presence events. */
export interface PresenceEvent {
  readonly room: string
  readonly kind: 'joined' | 'left'
  readonly client: string
  readonly user?: string | undefined
}

export interface BrokerHandlers {
  publication (publication: Publication): void
  broadcast (broadcast: Broadcast): void
  presence (event: PresenceEvent): void
  /** A room's stream was lost and began again while no publication said so (a cluster broker's check). */
  epoch (room: string, epoch: string): void
  /** Seqs `from`…`to` of the room never reached this node and history no longer has them. */
  lost (room: string, from: number, to: number): void
}

/**
 * Fan-out between nodes: hands every publication of a room to each node that subscribed to it, this
 * one included. A broker without ordering (RabbitMQ, NATS) is paired with a history store that
 * assigns seqs; receiving nodes then order by seq and fill holes from history.
 */
export interface Broker {
  /** Set once by the node before anything is published. */
  handle (handlers: BrokerHandlers): void
  publish (publication: Publication): Awaitable<void>
  broadcast (broadcast: Broadcast): Awaitable<void>
  presence (event: PresenceEvent): Awaitable<void>
  subscribe (room: string): Awaitable<void>
  unsubscribe (room: string): Awaitable<void>
  /**
   * The room's presence events reach this node from now on. A node asks while it has a watcher in the
   * room, so a node without one is not sent every join and leave of it (in a big room, most of what
   * its joins cost the cluster).
   */
  watch (room: string): Awaitable<void>
  unwatch (room: string): Awaitable<void>
  /**
   * Resolves once every publication of the room up to `position` has been handed to the node. A
   * cluster broker may still be delivering or repairing some when a join's replay was read; the hub
   * waits, so that none of them reaches the recovering connection a second time. Absent: always so.
   */
  caughtUp? (room: string, position: StreamPosition): Awaitable<void>
  close (): Awaitable<void>
}

export interface PresenceMember {
  readonly client: string
  readonly user?: string | undefined
  /** ms since the epoch. */
  readonly joinedAt: number
  readonly info?: unknown
}

export interface PresencePage {
  /** Connections in the room. */
  readonly total: number
  /** Distinct `user`s among them (connections without a token are not counted). */
  readonly users: number
  readonly members: readonly PresenceMember[]
  /** Pass it back for the next page; absent on the last one. */
  readonly cursor?: string | undefined
}

export interface PresenceStats {
  rooms: number
  members: number
}

export interface PresenceStore {
  join (room: string, member: PresenceMember): Awaitable<void>
  leave (room: string, client: string): Awaitable<void>
  page (room: string, limit: number, cursor?: string): Awaitable<PresencePage>
  stats (): PresenceStats
  close (): Awaitable<void>
}

/** A node as the registry lists it (GET /api/nodes). */
export interface NodeInfo {
  readonly id: string
  readonly connections: number
  readonly rooms: number
  readonly version: string
  /** Seconds since the node started. */
  readonly uptime: number
}

/** The live nodes: each announces itself and is listed while its heartbeats arrive. */
export interface NodeRegistry {
  /** Starts announcing; `self` is read at every heartbeat. */
  announce (self: () => NodeInfo): void
  list (): Awaitable<NodeInfo[]>
  close (): Awaitable<void>
}

/** A cluster engine's own counters in plain numbers, exported at scrape time. */
export interface ClusterStats {
  /** From the publish call to the answer of the store that sequenced and fanned it out (one script: Redis). */
  readonly publishSeconds?: PlainHistogram | undefined
  /** From the store's clock at publish to this node receiving the message from the broker. */
  readonly lagSeconds: PlainHistogram
  readonly sequencer: SequencerStats
  readonly shards: readonly { readonly name: string, readonly stats: { commands: number, failures: number, messagesIn: number, reconnects: number } }[]
}

/** The three parts a node works through. */
export interface Engine {
  readonly history: HistoryStore
  readonly broker: Broker
  readonly presence: PresenceStore
  readonly nodes: NodeRegistry
  /** Whether the engine can take publishes now (readiness). */
  ready (): boolean
  /** Present on engines that span nodes. */
  readonly cluster?: ClusterStats | undefined
  /** Stores and fans out; an engine that can do both in one atomic step overrides the composition. */
  publish (request: PublishRequest): Awaitable<PublishOutcome>
  close (): Promise<void>
}
