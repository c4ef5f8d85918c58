import type { Broadcast, Broker, BrokerHandlers, PresenceEvent, Publication } from '../types.js'

/** The one-node broker: a publication goes straight back to this node, in publish order. */
export class MemoryBroker implements Broker {
  private handlers: BrokerHandlers | undefined
  private readonly watched = new Set<string>()

  handle (handlers: BrokerHandlers): void {
    this.handlers = handlers
  }

  publish (publication: Publication): void {
    this.handlers?.publication(publication)
  }

  broadcast (broadcast: Broadcast): void {
    this.handlers?.broadcast(broadcast)
  }

  presence (event: PresenceEvent): void {
    if (this.watched.has(event.room)) this.handlers?.presence(event)
  }

  subscribe (): void {}

  unsubscribe (): void {}

  watch (room: string): void {
    this.watched.add(room)
  }

  unwatch (room: string): void {
    this.watched.delete(room)
  }

  close (): void {
    this.handlers = undefined
  }
}
