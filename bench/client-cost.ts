import { Switchboard, type WebSocketLike } from '../lib/client/index.js'

/**
 * What the client costs per received message: frames are fed straight into its message listener (no
 * network), each parsed, deduplicated and handed to a room listener. Prints µs per message and the
 * share of one core that 10k messages/s would take.
 *   node --import=tsx bench/client-cost.ts [messages]
 */
type Listener = (event: { data?: unknown }) => void

class FeedSocket implements WebSocketLike {
  static last: FeedSocket | undefined
  readyState = 1
  onMessage: Listener | undefined
  constructor () { FeedSocket.last = this }
  addEventListener (type: string, listener: Listener): void { if (type === 'message') this.onMessage = listener }
  send (): void {}
  close (): void {}
}

const total = Number(process.argv[2] ?? 200_000)
const sb = new Switchboard('ws://bench/ws', { WebSocket: FeedSocket })
sb.connect()
await new Promise(resolve => setTimeout(resolve, 0))
const socket = FeedSocket.last as FeedSocket
socket.onMessage?.({ data: '{"op":"welcome","client":"c","version":1,"heartbeatMs":600000,"maxPayload":65536}' })
const room = sb.room<{ bench: string }>('r')
let received = 0
room.on('message', () => { received++ })
await new Promise(resolve => setTimeout(resolve, 0))
socket.onMessage?.({ data: '{"op":"reply","ref":1,"ok":true,"room":"r","seq":0,"epoch":"E"}' })
await new Promise(resolve => setTimeout(resolve, 0))
const pad = 'x'.repeat(60)
const frames = Array.from({ length: total }, (_, i) => `{"op":"message","room":"r","seq":${i + 1},"data":{"bench":"${pad}"},"priority":"normal","ts":1796119645461,"from":"abc"}`)
for (let round = 0; round < 3; round++) {
  const start = process.hrtime.bigint()
  for (const data of frames) socket.onMessage?.({ data })
  const us = Number(process.hrtime.bigint() - start) / 1000 / total
  // 10k messages/s at `us` µs each take us × 10 ms of every second: `us` % of a core.
  console.log(JSON.stringify({ round, path: round === 0 ? 'new' : 'duplicate', messages: total, usPerMessage: +us.toFixed(3), coreAt10kPerSec: `${us.toFixed(1)} %` }))
}
if (received !== total) throw new Error(`the room listener got ${received} messages, expected ${total}: duplicates were not dropped`)
console.log(`received ${received} of ${total}; rounds after the first fed the same frames again (the duplicate path)`)
sb.disconnect()
