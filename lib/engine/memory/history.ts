import { randomBytes } from 'node:crypto'
import type {
  HistoryPage,
  HistoryQuery,
  HistoryStats,
  HistoryStore,
  Publication,
  PublishRequest,
  Recovery,
  StreamPosition
} from '../types.js'

export interface MemoryHistoryOptions {
  /** Messages kept per room; 0 keeps none (seqs and ids still work). */
  size: number
  /** A stream lives this long after its last publish; kept messages expire after it too. */
  ttlMs: number
  /** All streams together; over it, the least recently published streams are evicted first. */
  maxBytes: number
  idempotencyTtlMs: number
  /** Date.now unless a test needs to control time. */
  clock?: () => number
  /** Per-room size and ttl (ROOMS_CONFIG namespaces), read when a stream is created. */
  limitsFor?: (room: string) => { size?: number | undefined, ttlMs?: number | undefined } | undefined
}

/**
 * Heap cost of a stream and of a kept message beyond their strings, for the memory bound, as
 * `bench/history-heap.ts` measures them on Node 20 (see BENCHMARKS.md).
 */
const STREAM_OVERHEAD = 900
export const ENTRY_OVERHEAD = 200
const ID_OVERHEAD = 96

interface Stream {
  readonly room: string
  readonly epoch: string
  /** Messages kept (HISTORY_SIZE or the room's namespace). */
  readonly capacity: number
  readonly ttlMs: number
  /** Latest seq. */
  top: number
  /** Oldest kept seq; top + 1 when nothing is kept. */
  first: number
  /** Ring of kept messages: seq s lives at s % capacity. */
  readonly ring: (Publication | undefined)[]
  /** When each kept message was stored, by the same index: expiry uses this clock, not the publisher's ts. */
  readonly storedAt: number[]
  bytes: number
  touchedAt: number
  ids: Map<string, { seq: number, expiresAt: number }> | undefined
}

function newEpoch (): string {
  return randomBytes(6).toString('base64url')
}

/**
 * One object shape for every publication, so the hot paths that read them stay monomorphic. The room
 * name is the stream's: the request's is a new string parsed from each client frame.
 */
function publicationOf (stream: Stream, request: PublishRequest, seq: number): Publication {
  return {
    room: stream.room,
    data: request.data,
    priority: request.priority,
    ts: request.ts,
    from: request.from,
    user: request.user,
    ttlMs: request.ttlMs,
    key: request.key,
    id: request.id,
    seq,
    epoch: stream.epoch
  }
}

/**
 * V8's JSON.stringify returns its text as a tree of pieces, and a kept message would hold that tree for
 * HISTORY_SIZE publishes, each piece copied by every scavenge; converting the text to a number makes V8
 * flatten it in place (the idiom of the flatstr package).
 */
function flatten (text: string): void {
  Number(text)
}

function entryBytes (publication: Publication): number {
  return ENTRY_OVERHEAD + publication.data.length + (publication.from?.length ?? 0) + (publication.user?.length ?? 0) + (publication.key?.length ?? 0) + (publication.id?.length ?? 0)
}

/**
 * Streams in process memory. The Map keeps them in order of last publish (a publish moves its stream
 * to the end), so both the LRU eviction and the TTL sweep work from the front and stop at the first
 * stream they keep. The epoch is new for every stream created, so a restart, an expiry or an eviction
 * all tell clients that their positions are gone.
 */
export class MemoryHistory implements HistoryStore {
  private readonly streams = new Map<string, Stream>()
  private readonly clock: () => number
  private bytes = 0
  private messages = 0
  private duplicates = 0
  private evictedStreams = 0
  private idempotencyRecords = 0
  /** Streams holding publish ids, so that the sweep expires ids without visiting every stream. */
  private readonly streamsWithIds = new Set<Stream>()
  private readonly sweeper: NodeJS.Timeout

  constructor (private readonly options: MemoryHistoryOptions) {
    this.clock = options.clock ?? Date.now
    this.sweeper = setInterval(() => { this.sweep() }, Math.min(options.ttlMs, options.idempotencyTtlMs || Infinity, 10_000))
    this.sweeper.unref()
  }

  append (request: PublishRequest): { publication: Publication, duplicate: boolean } {
    const now = this.clock()
    const stream = this.touch(request.room, now)
    if (request.id !== undefined) {
      const seen = this.seenId(stream, request.id, now)
      if (seen !== undefined) {
        this.duplicates++
        return { publication: publicationOf(stream, request, seen), duplicate: true }
      }
    }
    const publication = publicationOf(stream, request, stream.top + 1)
    stream.top = publication.seq
    if (request.id !== undefined) {
      if (stream.ids === undefined) {
        stream.ids = new Map()
        this.streamsWithIds.add(stream)
      }
      stream.ids.set(request.id, { seq: publication.seq, expiresAt: now + this.options.idempotencyTtlMs })
      this.idempotencyRecords++
      this.grow(stream, ID_OVERHEAD + request.id.length)
    }
    const capacity = stream.capacity
    if (capacity === 0) {
      stream.first = stream.top + 1
    } else {
      if (stream.top - stream.first >= capacity) this.dropOldest(stream)
      flatten(publication.data)
      stream.ring[publication.seq % capacity] = publication
      stream.storedAt[publication.seq % capacity] = now
      this.messages++
      this.grow(stream, entryBytes(publication))
    }
    this.enforceBound(stream)
    return { publication, duplicate: false }
  }

  position (room: string): StreamPosition {
    const stream = this.current(room, this.clock())
    return { seq: stream.top, epoch: stream.epoch }
  }

  read (room: string, query: HistoryQuery): HistoryPage {
    const stream = this.current(room, this.clock())
    const lowest = Math.max(stream.first, (query.since ?? 0) + 1)
    const publications: Publication[] = []
    if (query.reverse === true) {
      for (let seq = stream.top; seq >= lowest && publications.length < query.limit; seq--) publications.push(this.at(stream, seq))
    } else {
      for (let seq = lowest; seq <= stream.top && publications.length < query.limit; seq++) publications.push(this.at(stream, seq))
    }
    return { position: { seq: stream.top, epoch: stream.epoch }, publications }
  }

  recover (room: string, since: StreamPosition, max: number): Recovery {
    const stream = this.current(room, this.clock())
    const position = { seq: stream.top, epoch: stream.epoch }
    // A position ahead of the stream was not taken from this stream's life.
    if (since.epoch !== stream.epoch || since.seq > stream.top) return { recovered: false, position, reason: 'epoch_changed' }
    if (stream.top - since.seq > max) return { recovered: false, position, reason: 'too_many' }
    if (since.seq + 1 < stream.first) return { recovered: false, position, reason: 'too_old' }
    const publications: Publication[] = []
    for (let seq = since.seq + 1; seq <= stream.top; seq++) publications.push(this.at(stream, seq))
    return { recovered: true, position, publications }
  }

  stats (): Required<HistoryStats> {
    return { streams: this.streams.size, messages: this.messages, bytes: this.bytes, duplicates: this.duplicates, evictedStreams: this.evictedStreams, idempotencyRecords: this.idempotencyRecords }
  }

  close (): void {
    clearInterval(this.sweeper)
    this.streams.clear()
    this.streamsWithIds.clear()
    this.bytes = 0
    this.messages = 0
    this.idempotencyRecords = 0
  }

  private at (stream: Stream, seq: number): Publication {
    return stream.ring[seq % stream.capacity] as Publication
  }

  /** The room's live stream with its expired messages trimmed; a new one if it expired or never was. */
  private current (room: string, now: number): Stream {
    let stream = this.streams.get(room)
    if (stream !== undefined && now - stream.touchedAt > stream.ttlMs) {
      this.remove(stream)
      stream = undefined
    }
    if (stream === undefined) {
      const limits = this.options.limitsFor?.(room)
      const capacity = limits?.size ?? this.options.size
      const ttlMs = limits?.ttlMs ?? this.options.ttlMs
      stream = { room, epoch: newEpoch(), capacity, ttlMs, top: 0, first: 1, ring: [], storedAt: [], bytes: 0, touchedAt: now, ids: undefined }
      this.streams.set(room, stream)
      this.grow(stream, STREAM_OVERHEAD + room.length)
      this.enforceBound(stream)
    } else {
      const oldest = now - stream.ttlMs
      while (stream.first <= stream.top && (stream.storedAt[stream.first % stream.capacity] as number) < oldest) this.dropOldest(stream)
    }
    return stream
  }

  /** current(), and the stream moves to the end of the publish order. */
  private touch (room: string, now: number): Stream {
    const stream = this.current(room, now)
    stream.touchedAt = now
    this.streams.delete(room)
    this.streams.set(room, stream)
    return stream
  }

  private seenId (stream: Stream, id: string, now: number): number | undefined {
    this.expireIds(stream, now)
    return stream.ids?.get(id)?.seq
  }

  private expireIds (stream: Stream, now: number): void {
    const ids = stream.ids
    if (ids === undefined) return
    // Ids were added in time order, so the expired ones are at the front.
    for (const [oldId, entry] of ids) {
      if (entry.expiresAt > now) break
      ids.delete(oldId)
      this.idempotencyRecords--
      this.grow(stream, -(ID_OVERHEAD + oldId.length))
    }
    if (ids.size === 0) {
      stream.ids = undefined
      this.streamsWithIds.delete(stream)
    }
  }

  private dropOldest (stream: Stream): void {
    const index = stream.first % stream.capacity
    const oldest = stream.ring[index] as Publication
    stream.ring[index] = undefined
    stream.first++
    this.messages--
    this.grow(stream, -entryBytes(oldest))
  }

  private grow (stream: Stream, bytes: number): void {
    stream.bytes += bytes
    this.bytes += bytes
  }

  /** Evicts the least recently published streams until the bound holds; `keep` is the one in use. */
  private enforceBound (keep: Stream): void {
    if (this.bytes <= this.options.maxBytes) return
    for (const stream of this.streams.values()) {
      if (this.bytes <= this.options.maxBytes) return
      if (stream === keep) continue
      this.remove(stream)
      this.evictedStreams++
    }
    // Only the stream in use is left and it alone is over the bound: it keeps fewer messages.
    while (this.bytes > this.options.maxBytes && keep.first <= keep.top && keep.capacity > 0) this.dropOldest(keep)
  }

  private remove (stream: Stream): void {
    this.streams.delete(stream.room)
    this.bytes -= stream.bytes
    this.messages -= stream.top - stream.first + 1
    if (stream.ids !== undefined) {
      this.idempotencyRecords -= stream.ids.size
      this.streamsWithIds.delete(stream)
    }
  }

  private sweep (): void {
    const now = this.clock()
    for (const stream of this.streams.values()) {
      // Streams are in last-publish order; one with a longer ttl can hold back shorter ones, which then
      // expire when next read or evicted by the bound.
      if (now - stream.touchedAt <= stream.ttlMs) break
      this.remove(stream)
    }
    for (const stream of this.streamsWithIds) this.expireIds(stream, now)
  }
}
