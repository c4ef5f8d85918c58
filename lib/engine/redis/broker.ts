import { LATENCY_BUCKETS_SECONDS, PlainHistogram } from '../../metrics/histogram.js'
import { Sequencer } from '../sequencer.js'
import type { Broadcast, Broker, BrokerHandlers, HistoryPage, HistoryQuery, PresenceEvent, Publication, StreamPosition } from '../types.js'
import { encodeBrokerPresence, encodeBrokerPublication, receiveBrokerMessage, sinkTo } from '../broker-wire.js'
import { TurnBatch } from '../turn-batch.js'
import { run, type Shard, type Shards } from './shards.js'

export interface RedisBrokerOptions {
  /** How often each node compares every subscribed room's position with what it received. */
  positionCheckMs: number
  /** The stream store the broker repairs from. */
  read: (room: string, query: HistoryQuery) => Promise<HistoryPage>
  /** Reads the room's current position (creating a new life for a stream Redis lost). */
  positions: (shard: Shard, rooms: readonly string[]) => Promise<StreamPosition[]>
  /** How long a hole waits for its message (Sequencer): 0 when the publish script orders pub/sub. */
  holdMs: number
}

const SUBSCRIBE_BATCH = 1000

/**
 * Fan-out over Redis pub/sub: one subscriber connection per shard carries every room this node has
 * members in (a channel per room) and, on the first shard, the global broadcasts. Messages pass through
 * a Sequencer, so a dropped connection or a lost pub/sub message turns into a repair from history.
 */
export class RedisBroker implements Broker {
  private handlers: BrokerHandlers | undefined
  readonly sequencer: Sequencer
  /** A room's presence events of one turn travel as one message. */
  private readonly presenceBatches = new TurnBatch<PresenceEvent, void>((room, events) => this.publishPresence(room, events))
  /** From the script's clock (Redis) to this node's receipt. */
  readonly lagSeconds = new PlainHistogram(LATENCY_BUCKETS_SECONDS)
  private readonly checker: NodeJS.Timeout
  private readonly channelPrefix: string
  private readonly presencePrefix: string
  private closed = false
  /** Rooms the node asked for and has not given up, including those whose subscription is under way. */
  private readonly wanted = new Set<string>()
  /** Rooms whose presence events this node asked for. */
  private readonly watching = new Set<string>()

  constructor (private readonly shards: Shards, private readonly options: RedisBrokerOptions) {
    this.channelPrefix = shards.channel('')
    this.presencePrefix = shards.presenceChannel('')
    this.sequencer = new Sequencer(sinkTo(() => this.handlers), options.read, options.holdMs)
    for (const shard of shards.list) {
      shard.subscriber.on('message', (channel: string, message: string) => { this.receive(shard, channel, message) })
      // The shards connect before the broker exists: their first 'ready' has already gone by.
      let connectedBefore = shard.subscriber.status === 'ready'
      shard.subscriber.on('ready', () => {
        if (connectedBefore) {
          shard.stats.reconnects++
          void this.resubscribe(shard)
        }
        connectedBefore = true
      })
    }
    this.checker = setInterval(() => { void this.checkPositions() }, options.positionCheckMs)
    this.checker.unref()
  }

  /** Subscribes the broadcast channel; the rooms come with their members. */
  async start (): Promise<void> {
    const first = this.shards.first
    await run(first, () => first.subscriber.subscribe(this.shards.broadcastChannel))
  }

  handle (handlers: BrokerHandlers): void {
    this.handlers = handlers
  }

  /** For a history that is not in Redis; the Redis engine publishes inside its append script instead. */
  async publish (publication: Publication): Promise<void> {
    const shard = this.shards.of(publication.room)
    await run(shard, () => shard.command.publish(this.shards.channel(publication.room), encodeBrokerPublication(publication, Date.now())))
  }

  async broadcast (broadcast: Broadcast): Promise<void> {
    const first = this.shards.first
    await run(first, () => first.command.publish(this.shards.broadcastChannel, JSON.stringify(broadcast)))
  }

  presence (event: PresenceEvent): Promise<void> {
    return this.presenceBatches.add(event.room, event)
  }

  private async publishPresence (room: string, events: PresenceEvent[]): Promise<void> {
    const shard = this.shards.of(room)
    await run(shard, () => shard.command.publish(this.shards.presenceChannel(room), encodeBrokerPresence(events)))
  }

  async watch (room: string): Promise<void> {
    this.watching.add(room)
    const shard = this.shards.of(room)
    await run(shard, () => shard.subscriber.subscribe(this.shards.presenceChannel(room)))
  }

  async unwatch (room: string): Promise<void> {
    this.watching.delete(room)
    const shard = this.shards.of(room)
    if (shard.subscriber.status === 'ready') await run(shard, () => shard.subscriber.unsubscribe(this.shards.presenceChannel(room))).catch(() => {})
  }

  /** Reads the position first: the sequencer's starting point (see Sequencer.track). */
  async subscribe (room: string): Promise<void> {
    this.wanted.add(room)
    const shard = this.shards.of(room)
    const [position] = await this.options.positions(shard, [room])
    // Unsubscribed while the position was read: the room emptied again.
    if (!this.wanted.has(room) || position === undefined) return
    this.sequencer.track(room, position)
    // The subscriber connection has no command timeout (it waits for pushes); run bounds SUBSCRIBE.
    await run(shard, () => shard.subscriber.subscribe(this.shards.channel(room)))
  }

  caughtUp (room: string, position: StreamPosition): Promise<void> | undefined {
    return this.sequencer.until(room, position)
  }

  async unsubscribe (room: string): Promise<void> {
    this.wanted.delete(room)
    this.sequencer.untrack(room)
    const shard = this.shards.of(room)
    // A room left during an outage is not resubscribed when the connection returns.
    if (shard.subscriber.status === 'ready') await run(shard, () => shard.subscriber.unsubscribe(this.shards.channel(room))).catch(() => {})
  }

  close (): void {
    this.closed = true
    clearInterval(this.checker)
    this.sequencer.close()
    this.handlers = undefined
  }

  private receive (shard: Shard, channel: string, message: string): void {
    shard.stats.messagesIn++
    if (channel === this.shards.broadcastChannel) {
      this.handlers?.broadcast(JSON.parse(message) as Broadcast)
      return
    }
    const prefix = channel.startsWith(this.presencePrefix) ? this.presencePrefix : this.channelPrefix
    receiveBrokerMessage(channel.slice(prefix.length), message, this.handlers, this.sequencer, this.lagSeconds)
  }

  /** After a reconnect: every room this node still has members (and watchers) in, then a check of what was missed. */
  private async resubscribe (shard: Shard): Promise<void> {
    const rooms = Array.from(this.sequencer.tracked()).filter(room => this.shards.of(room) === shard)
    const watched = Array.from(this.watching).filter(room => this.shards.of(room) === shard)
    try {
      if (shard === this.shards.first) await shard.subscriber.subscribe(this.shards.broadcastChannel)
      for (let i = 0; i < rooms.length; i += SUBSCRIBE_BATCH) {
        // A room left while earlier batches went out is not subscribed again.
        const batch = rooms.slice(i, i + SUBSCRIBE_BATCH).filter(room => this.wanted.has(room)).map(room => this.shards.channel(room))
        if (batch.length > 0) await shard.subscriber.subscribe(...batch)
      }
      for (let i = 0; i < watched.length; i += SUBSCRIBE_BATCH) {
        const batch = watched.slice(i, i + SUBSCRIBE_BATCH).filter(room => this.watching.has(room)).map(room => this.shards.presenceChannel(room))
        if (batch.length > 0) await shard.subscriber.subscribe(...batch)
      }
    } catch {
      // Dropped again before it finished: the next 'ready' starts over.
      return
    }
    for (const room of rooms) this.sequencer.markUrgent(room)
    await this.checkShard(shard)
  }

  private async checkPositions (): Promise<void> {
    for (const shard of this.shards.list) await this.checkShard(shard)
  }

  private async checkShard (shard: Shard): Promise<void> {
    if (this.closed || shard.command.status !== 'ready' || shard.subscriber.status !== 'ready') return
    const rooms = Array.from(this.sequencer.tracked()).filter(room => this.shards.of(room) === shard)
    await this.sequencer.checkRooms(rooms, async rooms => await this.options.positions(shard, rooms))
  }
}
