import { decodePayload, encodeRequest } from './entry.js'
import type { PlainHistogram } from '../metrics/histogram.js'
import type { Sequencer, SequencerSink } from './sequencer.js'
import type { BrokerHandlers, PresenceEvent, Publication } from './types.js'

/**
 * What cluster brokers carry on a room's channel or subject, one text per message:
 * `m<epoch>|<seq>|<storedAt>|<payload>` for a publication (the payload as history stores it, so the
 * data is never parsed on the way) and `p<JSON>` for presence events: one event as an object, or the
 * events of one turn in the room as an array (a reconnect storm's joins cost one message, not one each).
 */
export function encodeBrokerPublication (publication: Publication, storedAt: number): string {
  return `m${publication.epoch}|${publication.seq}|${storedAt}|${encodeRequest(publication)}`
}

function presenceFields (event: PresenceEvent): WirePresence {
  return { kind: event.kind, client: event.client, user: event.user }
}

/** The events of one room, in order. */
export function encodeBrokerPresence (events: readonly PresenceEvent[]): string {
  const json = events.length === 1 ? JSON.stringify(presenceFields(events[0] as PresenceEvent)) : JSON.stringify(events.map(presenceFields))
  return `p${json}`
}

interface WirePresence {
  kind: 'joined' | 'left'
  client: string
  user?: string | undefined
}

export type BrokerMessage =
  | { readonly publication: Publication, readonly storedAt: number }
  | { readonly presence: PresenceEvent[] }

export function decodeBrokerMessage (room: string, message: string): BrokerMessage {
  if (message.charCodeAt(0) === 109 /* m */) {
    const epochEnd = message.indexOf('|', 1)
    const seqEnd = message.indexOf('|', epochEnd + 1)
    const storedEnd = message.indexOf('|', seqEnd + 1)
    return {
      publication: decodePayload(room, message.slice(1, epochEnd), Number(message.slice(epochEnd + 1, seqEnd)), message, storedEnd + 1),
      storedAt: Number(message.slice(seqEnd + 1, storedEnd))
    }
  }
  const parsed = JSON.parse(message.slice(1)) as WirePresence | WirePresence[]
  const events = Array.isArray(parsed) ? parsed : [parsed]
  return { presence: events.map(event => ({ room, kind: event.kind, client: event.client, user: event.user })) }
}

/** A room's message from a broker: a presence event goes to the node, a publication through the sequencer. */
export function receiveBrokerMessage (room: string, text: string, handlers: BrokerHandlers | undefined, sequencer: Sequencer, lagSeconds: PlainHistogram): void {
  const decoded = decodeBrokerMessage(room, text)
  if ('presence' in decoded) {
    for (const event of decoded.presence) handlers?.presence(event)
    return
  }
  lagSeconds.observe(Math.max(0, Date.now() - decoded.storedAt) / 1000)
  sequencer.accept(decoded.publication)
}

/** A cluster broker's traffic, per connection (a Redis shard, the NATS or RabbitMQ server), exported at scrape time. */
export class BrokerStats {
  commands = 0
  failures = 0
  messagesIn = 0
  reconnects = 0
}

/** The sequencer's output goes to the node's handlers, once the node has set them. */
export function sinkTo (handlers: () => BrokerHandlers | undefined): SequencerSink {
  return {
    publication: publication => { handlers()?.publication(publication) },
    epoch: (room, epoch) => { handlers()?.epoch(room, epoch) },
    lost: (room, from, to) => { handlers()?.lost(room, from, to) }
  }
}
