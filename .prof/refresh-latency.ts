import { BenchPeer, benchPayload } from '../bench/peer.js'
import { connectAll } from '../bench/loadgen.js'
import { ServerProcess, applyPrevFlag, ensureOpenFiles, type ServerName } from '../bench/server-process.js'
import { latencyHistogram, summarize } from '../bench/stats.js'

// Two nodes over Redis; node A holds N members of room 'big' (presence refreshed every second);
// a publisher on A publishes 200 msg/s to room 'small', a reader on node B receives: latency.
const name = (process.argv[2] ?? 'switchboard') as ServerName
if (process.argv[3] !== undefined && process.argv[3] !== '') applyPrevFlag(process.argv[3], [name])
const N = Number(process.argv[4] ?? 16000)
ensureOpenFiles(N + 500)
const prefix = `rl-${Date.now()}:`
const env = { BROKER: 'redis', REDIS_PREFIX: prefix, DEMO: 'false', PRESENCE_TTL_MS: process.env.TTL ?? '3000' }
const a = await ServerProcess.start(name, { cpu: 0, nodeArgs: [], env: { ...env, NODE_ID: 'a' } })
const b = await ServerProcess.start(name, { cpu: 0, nodeArgs: [], env: { ...env, NODE_ID: 'b' } })
const peers = await connectAll(N, 20, async () => { const p = await BenchPeer.connect('v1', '127.0.0.1', a.port, () => {}, 'lean'); await p.join('big'); return p }, latencyHistogram())
const h = latencyHistogram()
const wallUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000)
const reader = await BenchPeer.connect('v1', '127.0.0.1', b.port, (_p, _pub, _n, sentUs, receivedAt) => {
  h.recordValue(Math.max(1, Math.round((performance.timeOrigin + receivedAt) * 1000 - sentUs)))
}, 'lean')
await reader.join('small')
const publisher = await BenchPeer.connect('v1', '127.0.0.1', a.port, () => {}, 'lean')
await publisher.join('small')
await new Promise(r => setTimeout(r, 1000))
for (let n = 1; n <= 1600; n++) {
  publisher.publish('small', benchPayload(2, 0, n, wallUs(), 100), 2)
  await new Promise(r => setTimeout(r, 5))
}
await new Promise(r => setTimeout(r, 500))
console.log(name, N, JSON.stringify(summarize(h)))
for (const p of [...peers, reader, publisher]) p.destroy()
await Promise.all([a.stop(30000), b.stop(30000)])
