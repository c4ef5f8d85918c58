import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib'
import { LATENCY_BUCKETS_SECONDS, PlainHistogram } from '../../metrics/histogram.js'
import { BrokerStats, encodeBrokerPresence, encodeBrokerPublication, receiveBrokerMessage, sinkTo } from '../broker-wire.js'
import { TurnBatch } from '../turn-batch.js'
import { EngineUnavailableError } from '../errors.js'
import type { HeartbeatChannel } from '../heartbeat-nodes.js'
import { Sequencer, UNORDERED_HOLD_MS } from '../sequencer.js'
import type { Broadcast, Broker, BrokerHandlers, HistoryPage, HistoryQuery, PresenceEvent, Publication, StreamPosition } from '../types.js'

export type AmqpRouting = 'rooms' | 'fanout'

export interface AmqpBrokerOptions {
  url: string
  /** Base name of the exchanges, so deployments can share a RabbitMQ vhost. */
  exchange: string
  /**
   * rooms: a direct exchange, the node's queue bound to each room it has members in, so a node gets
   * only its rooms' traffic. fanout: the chat design's one fanout exchange, every node gets everything.
   */
  routing: AmqpRouting
  positionCheckMs: number
  read: (room: string, query: HistoryQuery) => Promise<HistoryPage>
  positions: (rooms: readonly string[]) => Promise<StreamPosition[]>
}

/** Messages the broker may push before this node acknowledges them (acks go out once per turn). */
const PREFETCH = 1000

interface Link {
  readonly model: ChannelModel
  readonly publisher: ConfirmChannel
  readonly consumer: Channel
  readonly queue: string
}

/**
 * Fan-out over RabbitMQ. A publish is acknowledged to the client only after the broker confirmed it
 * (a confirm channel). Each node consumes from one exclusive, auto-delete queue. The connection is
 * reopened with backoff when it drops, the queue is bound again to every room with members, and a
 * Sequencer orders each room by seq and repairs from history what was missed meanwhile.
 */
export class AmqpBroker implements Broker {
  private handlers: BrokerHandlers | undefined
  readonly sequencer: Sequencer
  /** A room's presence events of one turn travel as one message. */
  private readonly presenceBatches = new TurnBatch<PresenceEvent, void>((room, events) => this.send(this.presenceExchange, room, encodeBrokerPresence(events)))
  readonly lagSeconds = new PlainHistogram(LATENCY_BUCKETS_SECONDS)
  readonly stats = new BrokerStats()
  private link: Link | undefined
  private readonly wanted = new Set<string>()
  /** Rooms whose presence events this node asked for: the queue's bindings on the presence exchange. */
  private readonly watching = new Set<string>()
  private readonly heartbeatHandlers = new Set<(kind: 'beat' | 'hello', text: string) => void>()
  private readonly checker: NodeJS.Timeout
  private closed = false
  private unacked: ConsumeMessage | undefined
  private reconnectDelayMs = 100

  private constructor (private readonly options: AmqpBrokerOptions) {
    this.sequencer = new Sequencer(sinkTo(() => this.handlers), options.read, UNORDERED_HOLD_MS)
    this.checker = setInterval(() => { void this.checkPositions() }, options.positionCheckMs)
    this.checker.unref()
  }

  /** Connects (failing the boot, naming AMQP_URL, when the broker cannot be reached). */
  static async open (options: AmqpBrokerOptions): Promise<AmqpBroker> {
    const broker = new AmqpBroker(options)
    try {
      await broker.connect()
    } catch (error) {
      broker.close()
      throw new EngineUnavailableError(`cannot connect to RabbitMQ at ${new URL(options.url).host} (AMQP_URL): ${(error as Error).message}`, { cause: error })
    }
    return broker
  }

  ready (): boolean {
    return this.link !== undefined
  }

  handle (handlers: BrokerHandlers): void {
    this.handlers = handlers
  }

  publish (publication: Publication): Promise<void> {
    return this.send(this.roomExchange, publication.room, encodeBrokerPublication(publication, Date.now()))
  }

  broadcast (broadcast: Broadcast): Promise<void> {
    return this.send(this.broadcastExchange, 'broadcast', JSON.stringify(broadcast))
  }

  presence (event: PresenceEvent): Promise<void> {
    return this.presenceBatches.add(event.room, event)
  }

  async watch (room: string): Promise<void> {
    this.watching.add(room)
    const link = this.requireLink()
    await this.guard(() => link.consumer.bindQueue(link.queue, this.presenceExchange, room))
  }

  async unwatch (room: string): Promise<void> {
    this.watching.delete(room)
    if (this.link !== undefined) await this.link.consumer.unbindQueue(this.link.queue, this.presenceExchange, room).catch(() => {})
  }

  /** Reads the position first, the sequencer's starting point; the binding is in place when this resolves. */
  async subscribe (room: string): Promise<void> {
    this.wanted.add(room)
    const link = this.requireLink()
    const [position] = await this.options.positions([room])
    if (!this.wanted.has(room) || position === undefined) return
    this.sequencer.track(room, position)
    if (this.options.routing === 'rooms') await this.guard(() => link.consumer.bindQueue(link.queue, this.roomExchange, room))
  }

  async unsubscribe (room: string): Promise<void> {
    this.wanted.delete(room)
    this.sequencer.untrack(room)
    if (this.options.routing === 'rooms' && this.link !== undefined) await this.link.consumer.unbindQueue(this.link.queue, this.roomExchange, room).catch(() => {})
  }

  caughtUp (room: string, position: StreamPosition): Promise<void> | undefined {
    return this.sequencer.until(room, position)
  }

  heartbeats (): HeartbeatChannel {
    return {
      send: (kind, text) => { void this.send(this.broadcastExchange, kind, text).catch(() => {}) },
      listen: handler => {
        this.heartbeatHandlers.add(handler)
        return () => { this.heartbeatHandlers.delete(handler) }
      }
    }
  }

  close (): void {
    this.closed = true
    clearInterval(this.checker)
    this.sequencer.close()
    this.handlers = undefined
    const link = this.link
    this.link = undefined
    void link?.model.close().catch(() => {})
  }

  private get roomExchange (): string {
    return `${this.options.exchange}.${this.options.routing === 'rooms' ? 'rooms' : 'fanout'}`
  }

  private get broadcastExchange (): string {
    return `${this.options.exchange}.broadcast`
  }

  /** Presence events by room, in either routing: only nodes with a watcher in the room bind it. */
  private get presenceExchange (): string {
    return `${this.options.exchange}.presence`
  }

  private requireLink (): Link {
    if (this.link === undefined) throw new EngineUnavailableError('rabbitmq: not connected')
    return this.link
  }

  private async guard<T> (operation: () => Promise<T>): Promise<T> {
    this.stats.commands++
    try {
      return await operation()
    } catch (error) {
      this.stats.failures++
      throw new EngineUnavailableError(`rabbitmq: ${(error as Error).message}`, { cause: error })
    }
  }

  /** Resolves when the broker confirmed the message (publisher confirms). */
  private send (exchange: string, routingKey: string, text: string): Promise<void> {
    const link = this.requireLink()
    return this.guard(() => new Promise<void>((resolve, reject) => {
      link.publisher.publish(exchange, routingKey, Buffer.from(text), {}, error => { error == null ? resolve() : reject(error as Error) })
    }))
  }

  private async connect (): Promise<void> {
    // Without noDelay, Nagle's algorithm holds small frames back for the peer's delayed ack: 40 ms per confirm.
    const model = await amqp.connect(this.options.url, { noDelay: true })
    try {
      const publisher = await model.createConfirmChannel()
      const consumer = await model.createChannel()
      await consumer.assertExchange(this.roomExchange, this.options.routing === 'rooms' ? 'direct' : 'fanout', { durable: true })
      await consumer.assertExchange(this.broadcastExchange, 'fanout', { durable: true })
      await consumer.assertExchange(this.presenceExchange, 'direct', { durable: true })
      const { queue } = await consumer.assertQueue('', { exclusive: true, autoDelete: true })
      await consumer.bindQueue(queue, this.broadcastExchange, '')
      if (this.options.routing === 'fanout') await consumer.bindQueue(queue, this.roomExchange, '')
      else for (const room of this.sequencer.tracked()) await consumer.bindQueue(queue, this.roomExchange, room)
      for (const room of this.watching) await consumer.bindQueue(queue, this.presenceExchange, room)
      await consumer.prefetch(PREFETCH)
      await consumer.consume(queue, message => { if (message !== null) this.receive(consumer, message) }, { noAck: false })
      // Channel errors close the connection too: one place handles every way of losing it.
      for (const emitter of [model, publisher, consumer]) emitter.on('error', () => {})
      model.on('close', () => { this.lost(model) })
      this.link = { model, publisher, consumer, queue }
      this.reconnectDelayMs = 100
    } catch (error) {
      await model.close().catch(() => {})
      throw error
    }
  }

  private lost (model: ChannelModel): void {
    if (this.link?.model !== model) return
    this.link = undefined
    this.unacked = undefined
    if (!this.closed) this.reconnect()
  }

  /** Backoff from 100 ms, doubling up to 5 s; after it, every room is checked at once. */
  private reconnect (): void {
    const timer = setTimeout(() => {
      if (this.closed) return
      this.connect().then(() => {
        this.stats.reconnects++
        for (const room of this.sequencer.tracked()) this.sequencer.markUrgent(room)
        void this.checkPositions()
      }, () => {
        this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, 5000)
        this.reconnect()
      })
    }, this.reconnectDelayMs)
    timer.unref()
  }

  private receive (consumer: Channel, message: ConsumeMessage): void {
    this.stats.messagesIn++
    // One ack for everything received in this turn of the event loop.
    if (this.unacked === undefined) {
      setImmediate(() => {
        const last = this.unacked
        this.unacked = undefined
        if (last !== undefined && this.link?.consumer === consumer) consumer.ack(last, true)
      })
    }
    this.unacked = message
    const text = message.content.toString()
    if (message.fields.exchange === this.broadcastExchange) {
      const kind = message.fields.routingKey
      if (kind === 'broadcast') this.handlers?.broadcast(JSON.parse(text) as Broadcast)
      else if (kind === 'beat' || kind === 'hello') for (const handler of this.heartbeatHandlers) handler(kind, text)
      return
    }
    receiveBrokerMessage(message.fields.routingKey, text, this.handlers, this.sequencer, this.lagSeconds)
  }

  private async checkPositions (): Promise<void> {
    if (this.link !== undefined) await this.sequencer.checkRooms(Array.from(this.sequencer.tracked()), this.options.positions)
  }
}
