import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node'
import { LATENCY_BUCKETS_SECONDS, PlainHistogram } from '../../metrics/histogram.js'
import { BrokerStats, encodeBrokerPresence, encodeBrokerPublication, receiveBrokerMessage, sinkTo } from '../broker-wire.js'
import { TurnBatch } from '../turn-batch.js'
import { EngineUnavailableError } from '../errors.js'
import type { HeartbeatChannel } from '../heartbeat-nodes.js'
import { Sequencer, UNORDERED_HOLD_MS } from '../sequencer.js'
import type { Broadcast, Broker, BrokerHandlers, HistoryPage, HistoryQuery, PresenceEvent, Publication, StreamPosition } from '../types.js'

export interface NatsBrokerOptions {
  url: string
  /** First token of every subject, so deployments can share a NATS server. */
  prefix: string
  positionCheckMs: number
  read: (room: string, query: HistoryQuery) => Promise<HistoryPage>
  positions: (rooms: readonly string[]) => Promise<StreamPosition[]>
}

const decoder = new TextDecoder()

/** Room names may hold any character; a subject token may not hold dots, spaces or wildcards. */
function subjectToken (room: string): string {
  return Buffer.from(room).toString('base64url') || '_'
}

/**
 * Fan-out over NATS core: a subject per room, subscribed while this node has members in it, and one
 * for global broadcasts. NATS does not order messages from different publishers, and a subscriber that
 * was disconnected misses what was sent meanwhile: a Sequencer orders each room by seq and fills holes
 * from the history store, which assigned the seqs.
 */
export class NatsBroker implements Broker {
  private handlers: BrokerHandlers | undefined
  readonly sequencer: Sequencer
  /** A room's presence events of one turn travel as one message. */
  private readonly presenceBatches = new TurnBatch<PresenceEvent, void>(async (room, events) => { this.send(this.presenceSubjectOf(room), encodeBrokerPresence(events)) })
  readonly lagSeconds = new PlainHistogram(LATENCY_BUCKETS_SECONDS)
  readonly stats = new BrokerStats()
  private readonly subscriptions = new Map<string, Subscription>()
  /** Subscriptions to rooms' presence events, by room. */
  private readonly watching = new Map<string, Subscription>()
  private readonly wanted = new Set<string>()
  private connected = true
  private readonly checker: NodeJS.Timeout

  private constructor (private readonly connection: NatsConnection, private readonly options: NatsBrokerOptions) {
    this.sequencer = new Sequencer(sinkTo(() => this.handlers), options.read, UNORDERED_HOLD_MS)
    connection.subscribe(this.broadcastSubject, {
      callback: (error, message) => {
        if (error === null) this.handlers?.broadcast(JSON.parse(decoder.decode(message.data)) as Broadcast)
      }
    })
    void this.watchStatus()
    this.checker = setInterval(() => { void this.checkPositions() }, options.positionCheckMs)
    this.checker.unref()
  }

  /** Connects (failing the boot, naming NATS_URL, when the server cannot be reached). */
  static async open (options: NatsBrokerOptions): Promise<NatsBroker> {
    let connection: NatsConnection
    try {
      connection = await connect({ servers: options.url.split(',').map(url => url.trim()), maxReconnectAttempts: -1, reconnectTimeWait: 250, name: 'switchboard' })
    } catch (error) {
      throw new EngineUnavailableError(`cannot connect to NATS at ${options.url} (NATS_URL): ${(error as Error).message}`, { cause: error })
    }
    const broker = new NatsBroker(connection, options)
    await connection.flush()
    return broker
  }

  ready (): boolean {
    return this.connected
  }

  handle (handlers: BrokerHandlers): void {
    this.handlers = handlers
  }

  publish (publication: Publication): void {
    this.send(this.subjectOf(publication.room), encodeBrokerPublication(publication, Date.now()))
  }

  broadcast (broadcast: Broadcast): void {
    this.send(this.broadcastSubject, JSON.stringify(broadcast))
  }

  presence (event: PresenceEvent): Promise<void> {
    return this.presenceBatches.add(event.room, event)
  }

  /** The flush makes the server hold the subscription before a watcher's join is answered. */
  async watch (room: string): Promise<void> {
    if (!this.connected) throw new EngineUnavailableError('nats: not connected')
    if (this.watching.has(room)) return
    this.watching.set(room, this.listen(this.presenceSubjectOf(room), room))
    await this.flushed()
  }

  unwatch (room: string): void {
    this.watching.get(room)?.unsubscribe()
    this.watching.delete(room)
  }

  /** Reads the position first, the sequencer's starting point; the flush makes the server hold the subscription. */
  async subscribe (room: string): Promise<void> {
    this.wanted.add(room)
    if (!this.connected) throw new EngineUnavailableError('nats: not connected')
    const [position] = await this.options.positions([room])
    if (!this.wanted.has(room) || position === undefined || this.subscriptions.has(room)) return
    this.sequencer.track(room, position)
    this.subscriptions.set(room, this.listen(this.subjectOf(room), room))
    await this.flushed()
  }

  unsubscribe (room: string): void {
    this.wanted.delete(room)
    this.sequencer.untrack(room)
    this.subscriptions.get(room)?.unsubscribe()
    this.subscriptions.delete(room)
  }

  /** Heartbeats of the node registry, on subjects of their own. */
  heartbeats (): HeartbeatChannel {
    const subject = (kind: string): string => `${this.options.prefix}.nodes.${kind}`
    return {
      send: (kind, text) => {
        try {
          this.connection.publish(subject(kind), text)
        } catch {}
      },
      listen: handler => {
        const subscriptions = (['beat', 'hello'] as const).map(kind => this.connection.subscribe(subject(kind), {
          callback: (error, message) => { if (error === null) handler(kind, decoder.decode(message.data)) }
        }))
        return () => { for (const subscription of subscriptions) subscription.unsubscribe() }
      }
    }
  }

  caughtUp (room: string, position: StreamPosition): Promise<void> | undefined {
    return this.sequencer.until(room, position)
  }

  async close (): Promise<void> {
    clearInterval(this.checker)
    this.sequencer.close()
    this.handlers = undefined
    await this.connection.drain().catch(() => {})
  }

  private get broadcastSubject (): string {
    return `${this.options.prefix}.broadcast`
  }

  private subjectOf (room: string): string {
    return `${this.options.prefix}.room.${subjectToken(room)}`
  }

  private presenceSubjectOf (room: string): string {
    return `${this.options.prefix}.presence.${subjectToken(room)}`
  }

  /** A subscription whose messages are the room's. */
  private listen (subject: string, room: string): Subscription {
    return this.connection.subscribe(subject, {
      callback: (error, message) => {
        if (error === null) this.receive(room, decoder.decode(message.data))
      }
    })
  }

  /** Resolves once the server has processed everything sent so far, subscriptions included. */
  private async flushed (): Promise<void> {
    try {
      await this.connection.flush()
    } catch (error) {
      throw new EngineUnavailableError(`nats: ${(error as Error).message}`, { cause: error })
    }
  }

  /** Publishes are refused while disconnected: the client would only buffer them. */
  private send (subject: string, text: string): void {
    this.stats.commands++
    if (!this.connected) {
      this.stats.failures++
      throw new EngineUnavailableError('nats: not connected')
    }
    this.connection.publish(subject, text)
  }

  private receive (room: string, text: string): void {
    this.stats.messagesIn++
    receiveBrokerMessage(room, text, this.handlers, this.sequencer, this.lagSeconds)
  }

  /** The client resubscribes by itself after a reconnect; what was sent meanwhile is repaired at once. */
  private async watchStatus (): Promise<void> {
    for await (const status of this.connection.status()) {
      if (status.type === 'disconnect') this.connected = false
      if (status.type === 'reconnect') {
        this.connected = true
        this.stats.reconnects++
        for (const room of this.sequencer.tracked()) this.sequencer.markUrgent(room)
        void this.checkPositions()
      }
    }
  }

  private async checkPositions (): Promise<void> {
    if (this.connected) await this.sequencer.checkRooms(Array.from(this.sequencer.tracked()), this.options.positions)
  }
}
