import { Fifo } from '../fifo.js'
import { LATENCY_BUCKETS_SECONDS, PlainHistogram } from '../metrics/histogram.js'
import { PRIORITY_LEVELS, Priority } from '../protocol/priority.js'
import type { DeflateSettings, OutgoingFrame } from './frame.js'
import { WritePump } from './write-pump.js'

export const DROP_REASONS = ['queue_full', 'evicted', 'expired', 'superseded', 'closed'] as const
export type DropReason = (typeof DROP_REASONS)[number]

/** Delivery counters shared by every outbox of one app, in plain numbers (exported at scrape time). */
export class DeliveryStats {
  readonly sent = new Float64Array(PRIORITY_LEVELS)
  readonly dropped: Record<DropReason, Float64Array> = {
    queue_full: new Float64Array(PRIORITY_LEVELS),
    evicted: new Float64Array(PRIORITY_LEVELS),
    expired: new Float64Array(PRIORITY_LEVELS),
    superseded: new Float64Array(PRIORITY_LEVELS),
    closed: new Float64Array(PRIORITY_LEVELS)
  }

  slowConsumerDisconnects = 0
  readonly outboxWaitSeconds = new PlainHistogram(LATENCY_BUCKETS_SECONDS)
}

/** The part of a stream the outbox writes to: a WebSocket's stream (see ws-adapter.ts), or a fake in tests. */
export interface FrameSink {
  /** False once nothing more may be written: the stream ended, or a close frame was sent. */
  readonly writable: boolean
  readonly writableLength: number
  cork (): void
  uncork (): void
  write (chunk: Buffer, callback?: (error?: Error | null) => void): boolean
}

/** What the outbox tells its connection. */
export interface OutboxListeners {
  /** A critical frame did not fit: the outbox has closed itself, the connection must go (4008). */
  slowConsumer (): void
  /** A room message was dropped (not for reason `closed`): the connection tells its client which seq. */
  dropped (frame: OutgoingFrame, reason: DropReason): void
}

export interface OutboxLimits {
  /** Queued messages at most, all levels together. */
  maxMessages: number
  /** Queued bytes at most, all levels together. */
  maxBytes: number
  /** Frames written per flush at most. */
  writeBatch: number
  /** Stop writing while the sink buffers this many bytes, so that waiting frames stay where priority applies. */
  writeHighWater: number
}


const EMPTY = Buffer.alloc(0)
/** Up to this many bytes, a batch is copied into one buffer, which Buffer.allocUnsafe serves from Node's pool. */
const POOLED_COPY_LIMIT = Buffer.poolSize >>> 1
/**
 * Frames of the flush in progress; flushes never nest, so one array serves every outbox. Counted, not
 * emptied through its length, which would free its storage for the next flush to allocate again.
 */
const scratch: (Buffer | undefined)[] = []

/** The first `count` chunks copied into one buffer, from Node's pool as Buffer.concat would take it. */
function joinChunks (chunks: readonly (Buffer | undefined)[], count: number, bytes: number): Buffer {
  const joined = Buffer.allocUnsafe(bytes)
  let offset = 0
  for (let i = 0; i < count; i++) {
    const chunk = chunks[i] as Buffer
    joined.set(chunk, offset)
    offset += chunk.length
  }
  return joined
}

/**
 * The four priority levels: a queue each, allocated on first use, and what each holds. Plain arrays of
 * numbers: two typed arrays cost about 0.4 KB more per connection than these.
 */
class Levels {
  readonly queues: (Fifo<OutgoingFrame> | undefined)[] = [undefined, undefined, undefined, undefined]
  readonly counts: number[] = [0, 0, 0, 0]
  readonly bytes: number[] = [0, 0, 0, 0]
}

/**
 * The bounded per-connection queue with four priority levels and the write pump's per-socket half.
 * The levels are allocated when a second frame has to wait: most connections only ever hold one
 * frame at a time (see `only`), and then cost one small object.
 */
export class PriorityOutbox {
  private levels: Levels | undefined
  /**
   * The one frame of an otherwise empty outbox, outside the levels: a frame queued and written before
   * the next one comes (every delivery of a lightly loaded server, most of a fan-out's) then touches
   * this object only, not four arrays and a queue. A second frame moves it into its level first.
   */
  private only: OutgoingFrame | undefined
  /** The queued frame per conflation key; a queued frame that is not its key's entry was superseded. */
  private latestByKey: Map<string, OutgoingFrame> | undefined
  private queuedMessages = 0
  private queuedBytes = 0
  private scheduled = false
  private awaitingWrite = false
  /** The pump's live turn in which this outbox last wrote a live frame at once. */
  private liveTurnWritten = 0
  private closed = false
  private emptyWaiters: (() => void)[] | undefined

  constructor (
    private readonly sink: FrameSink,
    private readonly pump: WritePump,
    private readonly limits: OutboxLimits,
    private readonly stats: DeliveryStats,
    private readonly listeners: OutboxListeners,
    /** What this connection negotiated for permessage-deflate; undefined sends every frame as built. */
    private readonly deflate: DeflateSettings | undefined = undefined
  ) {}

  get length (): number {
    return this.queuedMessages
  }

  get bytes (): number {
    return this.queuedBytes
  }

  get isClosed (): boolean {
    return this.closed
  }

  /** Queues a frame; false when it was dropped (counted) or the connection had to be closed. */
  enqueue (frame: OutgoingFrame): boolean {
    const priority = frame.priority
    if (this.closed) {
      this.stats.dropped.closed[priority]!++
      return false
    }
    const size = frame.wire(this.deflate).length
    const key = frame.conflationKey
    if (this.queuedMessages === 0 && key === undefined && this.fits(size)) {
      this.only = frame
      this.queuedMessages = 1
      this.queuedBytes = size
      this.requestFlush()
      return true
    }
    if (this.only !== undefined) this.moveOnlyToItsLevel()
    if (key !== undefined && this.latestByKey !== undefined) {
      const superseded = this.latestByKey.get(key)
      if (superseded !== undefined) this.forget(superseded, 'superseded')
    }
    if (!this.fits(size)) {
      if (!this.canFitByEvicting(priority, size)) {
        this.stats.dropped.queue_full[priority]!++
        if (frame.room !== undefined) this.listeners.dropped(frame, 'queue_full')
        if (priority === Priority.critical) this.disconnectSlowConsumer()
        return false
      }
      this.evictBelow(priority, size)
    }
    this.pushToLevel(frame, size)
    this.queuedMessages++
    this.queuedBytes += size
    if (key !== undefined) {
      if (this.latestByKey === undefined) this.latestByKey = new Map()
      this.latestByKey.set(key, frame)
    }
    this.requestFlush()
    return true
  }

  /**
   * A live room message or broadcast: on a quiet server, written at once when this socket has nothing
   * queued or buffered (see WritePump.liveTurn); otherwise queued as enqueue queues it.
   */
  enqueueLive (frame: OutgoingFrame): boolean {
    if (this.queuedMessages === 0 && !this.closed && !this.awaitingWrite && frame.conflationKey === undefined) {
      const sink = this.sink
      if (sink.writable && sink.writableLength === 0) {
        const turn = this.pump.liveTurn()
        const wire = frame.wire(this.deflate)
        if (turn !== 0 && turn !== this.liveTurnWritten && this.fits(wire.length)) {
          this.liveTurnWritten = turn
          this.stats.sent[frame.priority]!++
          // Written as it was queued: it spent no time in the outbox.
          this.stats.outboxWaitSeconds.observe(0)
          sink.write(wire)
          return true
        }
      }
    }
    return this.enqueue(frame)
  }

  private requestFlush (): void {
    if (!this.scheduled && !this.awaitingWrite) {
      this.scheduled = true
      this.pump.schedule(this)
    }
  }

  private pushToLevel (frame: OutgoingFrame, size: number): void {
    const priority = frame.priority
    const levels = (this.levels ??= new Levels())
    let level = levels.queues[priority]
    if (level === undefined) {
      level = new Fifo<OutgoingFrame>()
      levels.queues[priority] = level
    }
    level.push(frame)
    levels.counts[priority]!++
    levels.bytes[priority]! += size
  }

  /** The queue counts already include it. */
  private moveOnlyToItsLevel (): void {
    const frame = this.only as OutgoingFrame
    this.only = undefined
    this.pushToLevel(frame, frame.wire(this.deflate).length)
  }

  /**
   * Writes up to one batch, highest priority first; called by the WritePump, at most once per pass.
   * `now` is the pump's recent performance.now(), for expiry and the wait histogram.
   */
  flush (now: number): void {
    this.scheduled = false
    const sink = this.sink
    if (this.closed || this.awaitingWrite || !sink.writable) return
    const { writeBatch, writeHighWater } = this.limits
    const buffered = sink.writableLength
    if (buffered >= writeHighWater) {
      this.awaitWrite(EMPTY)
      return
    }
    const only = this.only
    if (only !== undefined) {
      // The lone frame of an otherwise empty outbox: nothing to gather into a batch, and nothing
      // behind it that the high-water mark could hold back.
      this.only = undefined
      this.queuedMessages = 0
      this.queuedBytes = 0
      const wire = this.wireToSend(only, now)
      if (wire !== undefined) sink.write(wire)
      this.notifyEmpty()
      return
    }
    const chunks = scratch
    let count = 0
    let bytes = 0
    let crossedHighWater = false
    while (count < writeBatch) {
      const frame = this.takeNext()
      if (frame === undefined) break
      const wire = this.wireToSend(frame, now)
      if (wire === undefined) continue
      chunks[count++] = wire
      bytes += wire.length
      if (buffered + bytes >= writeHighWater && this.queuedMessages > 0) {
        crossedHighWater = true
        break
      }
    }
    if (count === 1 || (count > 1 && bytes <= POOLED_COPY_LIMIT)) {
      // Small frames are copied into one pooled buffer: one trip through the stream code and one
      // syscall-bound write cost far more than copying a few hundred bytes.
      const chunk = count === 1 ? chunks[0] as Buffer : joinChunks(chunks, count, bytes)
      if (crossedHighWater) this.awaitWrite(chunk)
      else sink.write(chunk)
    } else if (count > 1) {
      // Large batches go out as one vectored write of the shared frames, without copying them.
      sink.cork()
      const last = count - 1
      for (let i = 0; i < last; i++) sink.write(chunks[i] as Buffer)
      if (crossedHighWater) this.awaitWrite(chunks[last] as Buffer)
      else sink.write(chunks[last] as Buffer)
      sink.uncork()
    }
    chunks.fill(undefined, 0, count)
    if (this.queuedMessages === 0) {
      this.notifyEmpty()
    } else if (!this.awaitingWrite) {
      this.scheduled = true
      this.pump.schedule(this)
    }
  }

  /** The bytes of a frame taken off the queue, counted as sent; undefined when its ttl ran out (counted as dropped). */
  private wireToSend (frame: OutgoingFrame, now: number): Buffer | undefined {
    if (frame.expiresAt !== 0 && frame.expiresAt <= now) {
      this.stats.dropped.expired[frame.priority]!++
      if (frame.room !== undefined) this.listeners.dropped(frame, 'expired')
      return undefined
    }
    this.stats.sent[frame.priority]!++
    this.stats.outboxWaitSeconds.observe((now - frame.createdAt) / 1000)
    return frame.wire(this.deflate)
  }

  private notifyEmpty (): void {
    const waiters = this.emptyWaiters
    if (waiters === undefined) return
    this.emptyWaiters = undefined
    for (const resolve of waiters) resolve()
  }

  /**
   * Puts `next` in the place of `queued` if that frame is still waiting (same priority, no conflation
   * key), so a report that grows while it waits is sent once. False when `queued` already left, or
   * when the larger frame would not fit: queue `next` as usual then.
   */
  replaceQueued (queued: OutgoingFrame, next: OutgoingFrame): boolean {
    if (this.closed || next.priority !== queued.priority) return false
    const growth = next.wire(this.deflate).length - queued.wire(this.deflate).length
    if (this.queuedBytes + growth > this.limits.maxBytes) return false
    if (this.only === queued) {
      this.only = next
      this.queuedBytes += growth
      return true
    }
    const levels = this.levels
    const level = levels?.queues[queued.priority]
    if (levels === undefined || level === undefined) return false
    const items = level.items
    for (let i = level.tail - 1; i >= level.head; i--) {
      if (items[i] !== queued) continue
      items[i] = next
      levels.bytes[queued.priority]! += growth
      this.queuedBytes += growth
      return true
    }
    return false
  }

  /** Resolves once every queued frame was handed to the socket (or dropped), or the outbox closed. */
  whenEmpty (): Promise<void> {
    if (this.queuedMessages === 0 || this.closed) return Promise.resolve()
    return new Promise(resolve => {
      if (this.emptyWaiters === undefined) this.emptyWaiters = []
      this.emptyWaiters.push(resolve)
    })
  }

  /** Drops whatever is still queued (counted as `closed`); later frames are refused the same way. */
  close (): void {
    if (this.closed) return
    this.closed = true
    if (this.only !== undefined) {
      this.stats.dropped.closed[this.only.priority]!++
      this.only = undefined
    }
    for (const level of this.levels?.queues ?? []) {
      if (level === undefined) continue
      for (const frame of level.drain()) {
        if (this.isLive(frame)) this.stats.dropped.closed[frame.priority]!++
      }
    }
    this.levels = undefined
    this.latestByKey = undefined
    this.queuedMessages = 0
    this.queuedBytes = 0
    this.notifyEmpty()
  }

  /**
   * Writes `last` (the frame that crossed the high-water mark, or an empty chunk when the socket was
   * already full) with a callback: the socket calls it once everything before it reached the kernel,
   * which is when priorities may pick again. Unlike 'drain', this works for any WRITE_HIGH_WATER.
   */
  private awaitWrite (last: Buffer): void {
    this.awaitingWrite = true
    if (this.onWritten === undefined) this.onWritten = this.written.bind(this)
    this.sink.write(last, this.onWritten)
  }

  /** Bound on first use: most connections never fill their socket buffer. */
  private onWritten: ((error?: Error | null) => void) | undefined

  private written (error?: Error | null): void {
    this.awaitingWrite = false
    if (error != null || this.closed) return
    if (this.queuedMessages > 0 && !this.scheduled) {
      this.scheduled = true
      this.pump.schedule(this)
    }
  }

  private fits (size: number): boolean {
    return this.queuedMessages < this.limits.maxMessages && this.queuedBytes + size <= this.limits.maxBytes
  }

  private canFitByEvicting (priority: Priority, size: number): boolean {
    let messages = this.queuedMessages
    let bytes = this.queuedBytes
    const levels = this.levels
    for (let level = PRIORITY_LEVELS - 1; level > priority && levels !== undefined; level--) {
      messages -= levels.counts[level]!
      bytes -= levels.bytes[level]!
    }
    return messages < this.limits.maxMessages && bytes + size <= this.limits.maxBytes
  }

  private evictBelow (priority: Priority, size: number): void {
    const levels = this.levels
    if (levels === undefined) return
    for (let level = PRIORITY_LEVELS - 1; level > priority && !this.fits(size); level--) {
      const queue = levels.queues[level]
      if (queue === undefined) continue
      while (!this.fits(size)) {
        const victim = queue.shift()
        if (victim === undefined) break
        if (this.isLive(victim)) this.forget(victim, 'evicted')
      }
    }
  }

  /** Takes the oldest live frame of the highest non-empty level out of the accounting. */
  private takeNext (): OutgoingFrame | undefined {
    const levels = this.levels
    if (levels === undefined) return undefined
    for (let priority = 0; priority < PRIORITY_LEVELS; priority++) {
      if (levels.counts[priority] === 0) continue
      const queue = levels.queues[priority] as Fifo<OutgoingFrame>
      let frame = queue.shift()
      while (frame !== undefined && !this.isLive(frame)) frame = queue.shift()
      if (frame === undefined) continue
      this.account(frame)
      if (frame.conflationKey !== undefined) this.latestByKey!.delete(frame.conflationKey)
      return frame
    }
    return undefined
  }

  private isLive (frame: OutgoingFrame): boolean {
    return frame.conflationKey === undefined || this.latestByKey?.get(frame.conflationKey) === frame
  }

  /**
   * Removes a queued frame from the counts without touching its queue: a superseded frame stays in its
   * array as a dead entry that takeNext skips, which keeps replacement O(1).
   */
  private forget (frame: OutgoingFrame, reason: DropReason): void {
    this.account(frame)
    if (frame.conflationKey !== undefined && this.latestByKey?.get(frame.conflationKey) === frame) {
      this.latestByKey.delete(frame.conflationKey)
    }
    this.stats.dropped[reason][frame.priority]!++
    if (frame.room !== undefined) this.listeners.dropped(frame, reason)
  }

  /**
   * Takes a frame of the levels out of the counts. Its wire bytes are cached on it, so this is the same
   * size that enqueue counted.
   */
  private account (frame: OutgoingFrame): void {
    const size = frame.wire(this.deflate).length
    const levels = this.levels as Levels
    levels.counts[frame.priority]!--
    levels.bytes[frame.priority]! -= size
    this.queuedMessages--
    this.queuedBytes -= size
  }

  private disconnectSlowConsumer (): void {
    this.stats.slowConsumerDisconnects++
    this.close()
    this.listeners.slowConsumer()
  }
}

/**
 * Makes the outboxes of one app: they share its write pump and counters, and the live set lets
 * metrics sum queue lengths and shutdown wait for every queue to empty.
 */
export class OutboxRegistry {
  readonly stats = new DeliveryStats()
  readonly live = new Set<PriorityOutbox>()
  private readonly pump = new WritePump()

  constructor (readonly limits: OutboxLimits) {}

  /** See WritePump.flushQuiet; a bound function, so that every socket can share it as a listener. */
  readonly flushQuiet = this.pump.flushQuiet

  create (sink: FrameSink, listeners: OutboxListeners, deflate?: DeflateSettings): PriorityOutbox {
    const outbox = new PriorityOutbox(sink, this.pump, this.limits, this.stats, listeners, deflate)
    this.live.add(outbox)
    return outbox
  }

  /** Closes the outbox (what is still queued is counted as dropped, reason closed). */
  release (outbox: PriorityOutbox): void {
    outbox.close()
    this.live.delete(outbox)
  }

  queuedMessages (): number {
    let total = 0
    for (const outbox of this.live) total += outbox.length
    return total
  }

  /** Resolves when every live outbox has handed its frames to its socket. */
  async whenAllEmpty (): Promise<void> {
    await Promise.all(Array.from(this.live, outbox => outbox.whenEmpty()))
  }
}
