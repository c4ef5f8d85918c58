import { connectAll } from './loadgen.js'
import { BenchPeer, isClientKind } from './peer.js'
import { latencyHistogram, summarize } from './stats.js'

/**
 * One load-generator process of bench/scale.ts: a process may hold fewer sockets than the hard limit on
 * open files, so the 100k connections come from several of these. It connects `count` clients to one
 * node and joins each to the room, as it connects or (`storm`) all at once after the last connect, and
 * with `since` (a JSON position, storm only) each join recovers from it as a reconnecting client does, and
 * reports every broadcast's receipts (latency from the publisher's wall clock, since the publisher is
 * another process) when the driver asks.
 */
const [port, count, concurrency, room, client, joins] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4]), process.argv[5] as string, process.argv[6] as string, process.argv[7]]
const since = process.argv[8] === undefined ? undefined : JSON.parse(process.argv[8]) as { epoch: string, seq: number }
if (!isClientKind(client)) throw new Error(`unknown client ${client}`)
if (joins !== 'as-connected' && joins !== 'storm') throw new Error(`unknown join mode ${joins}`)
const send = (message: Record<string, unknown>): void => { process.send?.(message) }

/** Per broadcast n: latencies in ms of the receipts so far. */
const receipts = new Map<number, number[]>()
const sink = (_priority: number, _publisher: number, n: number, sentUs: number, receivedAt: number): void => {
  const ms = performance.timeOrigin + receivedAt - sentUs / 1000
  let list = receipts.get(n)
  if (list === undefined) receipts.set(n, list = [])
  if (list.push(ms) === joined) send({ complete: n })
}

let joined = count
const started = performance.now()
const connectAndJoin = latencyHistogram()
let peers: BenchPeer[]
if (joins === 'as-connected') {
  // Each client joins as soon as it is connected, as a user's client does: joins arrive at the connect rate.
  peers = await connectAll(count, concurrency, async () => {
    const peer = await BenchPeer.connect('v1', '127.0.0.1', port, sink, client)
    await peer.join(room)
    return peer
  }, connectAndJoin)
  send({ connected: count, ms: performance.now() - started, connectAndJoinMs: summarize(connectAndJoin) })
} else {
  // Every client connected first, then every join at once: the shape of a reconnect storm.
  peers = await connectAll(count, concurrency, () => BenchPeer.connect('v1', '127.0.0.1', port, sink, client), connectAndJoin)
  const connectMs = performance.now() - started
  const joinsSent = performance.now()
  const outcomes = await Promise.allSettled(peers.map(peer => peer.join(room, since)))
  joined = outcomes.filter(outcome => outcome.status === 'fulfilled').length
  const recovered = outcomes.filter(outcome => outcome.status === 'fulfilled' && (outcome.value as { recovered?: boolean }).recovered === true).length
  const refused: Record<string, number> = {}
  for (const outcome of outcomes) {
    if (outcome.status === 'fulfilled') continue
    const code = /"code":"(\w+)"/.exec((outcome.reason as Error).message)?.[1] ?? 'other'
    refused[code] = (refused[code] ?? 0) + 1
  }
  send({ connected: count, ms: connectMs, connectAndJoinMs: summarize(connectAndJoin), joined, recovered, refused, stormMs: performance.now() - joinsSent })
}

process.on('message', (message: { report?: boolean }) => {
  if (message.report !== true) return
  for (const peer of peers) peer.destroy()
  // Disconnecting at once could drop the report before it is written to the channel.
  process.send?.({ receipts: Object.fromEntries(receipts), joined }, () => process.disconnect())
})
