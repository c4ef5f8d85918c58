import type { Broadcast, Broker, BrokerHandlers, PresenceEvent, Publication } from '../types.js'

/** The one-node broker: a publication goes straight back to this node, in publish order. */
export class MemoryBroker implements Broker {
  private handlers: BrokerHandlers | undefined

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
    this.handlers?.presence(event)
  }

  subscribe (): void {}

  unsubscribe (): void {}

  close (): void {
    this.handlers = undefined
  }
}
