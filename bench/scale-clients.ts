import { connectAll } from './loadgen.js'
import { BenchPeer, isClientKind } from './peer.js'
import { latencyHistogram, summarize } from './stats.js'

/**
 * One load-generator process of bench/scale.ts: a process may hold fewer sockets than the hard limit on
 * open files, so the 100k connections come from several of these. It connects `count` clients to one
 * node, joins each to the room as it connects, and reports every broadcast's receipts (latency from the publisher's
 * wall clock, since the publisher is another process) when the driver asks.
 */
const [port, count, concurrency, room, client] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4]), process.argv[5] as string, process.argv[6] as string]
if (!isClientKind(client)) throw new Error(`unknown client ${client}`)
const send = (message: Record<string, unknown>): void => { process.send?.(message) }

/** Per broadcast n: latencies in ms of the receipts so far. */
const receipts = new Map<number, number[]>()
const sink = (_priority: number, _publisher: number, n: number, sentUs: number, receivedAt: number): void => {
  const ms = performance.timeOrigin + receivedAt - sentUs / 1000
  let list = receipts.get(n)
  if (list === undefined) receipts.set(n, list = [])
  if (list.push(ms) === count) send({ complete: n })
}

const started = performance.now()
const connectAndJoin = latencyHistogram()
// Each client joins as soon as it is connected, as a user's client does: joins arrive at the connect rate.
const peers = await connectAll(count, concurrency, async () => {
  const peer = await BenchPeer.connect('v1', '127.0.0.1', port, sink, client)
  await peer.join(room)
  return peer
}, connectAndJoin)
send({ connected: count, ms: performance.now() - started, connectAndJoinMs: summarize(connectAndJoin) })

process.on('message', (message: { report?: boolean }) => {
  if (message.report !== true) return
  for (const peer of peers) peer.destroy()
  // Disconnecting at once could drop the report before it is written to the channel.
  process.send?.({ receipts: Object.fromEntries(receipts) }, () => process.disconnect())
})
