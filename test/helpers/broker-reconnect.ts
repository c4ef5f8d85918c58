import { setTimeout as sleep } from 'node:timers/promises'
import type { Broker, PresenceEvent } from '../../lib/engine/types.js'

export interface AcrossReconnect {
  /** Presence events that reached the node, all rooms. */
  events: PresenceEvent[]
  broadcasts: number
}

/**
 * The reconnect scenario the brokers share: rooms 'watched' and 'quiet' are subscribed, 'quiet' is
 * watched and unwatched again, `drop` cuts the connection, and then presence events of both rooms
 * (and broadcasts, with `broadcasts`) are sent until the watched room's arrive. Messages sent while the
 * node is away are not kept by any of the brokers, hence sending until one arrives.
 */
export async function presenceAcrossReconnect (broker: Broker, drop: () => Promise<void>, options: { ready?: () => boolean, broadcasts?: boolean, timeoutMs: number }): Promise<AcrossReconnect> {
  const seen: AcrossReconnect = { events: [], broadcasts: 0 }
  broker.handle({ publication () {}, broadcast () { seen.broadcasts++ }, presence (event) { seen.events.push(event) }, epoch () {}, lost () {} })
  for (const room of ['watched', 'quiet']) await broker.subscribe(room)
  await broker.watch('watched')
  await broker.watch('quiet')
  await broker.unwatch('quiet')
  await drop()
  const ready = options.ready ?? (() => true)
  const deadline = Date.now() + options.timeoutMs
  for (let n = 0; !seen.events.some(event => event.room === 'watched') || (options.broadcasts === true && seen.broadcasts === 0); n++) {
    if (Date.now() > deadline) throw new Error(`after the reconnect: ${seen.events.length} presence events, ${seen.broadcasts} broadcasts`)
    if (ready()) {
      await broker.presence({ room: 'quiet', kind: 'joined', client: `q${n}` })
      await broker.presence({ room: 'watched', kind: 'joined', client: `w${n}` })
      if (options.broadcasts === true) await broker.broadcast({ data: '1', priority: 1, ts: n })
    }
    await sleep(50)
  }
  return seen
}
