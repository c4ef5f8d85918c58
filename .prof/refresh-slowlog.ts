import { Redis } from 'ioredis'
import { BenchPeer } from '../bench/peer.js'
import { connectAll } from '../bench/loadgen.js'
import { ServerProcess, applyPrevFlag, ensureOpenFiles, type ServerName } from '../bench/server-process.js'
import { latencyHistogram } from '../bench/stats.js'

// One node, N members in one room, presence refreshed every second: how long Redis runs each refresh.
const name = (process.argv[2] ?? 'switchboard') as ServerName
if (process.argv[3] !== undefined && process.argv[3] !== "") applyPrevFlag(process.argv[3], [name])
const N = Number(process.argv[4] ?? 16000)
ensureOpenFiles(N + 500)
const admin = new Redis()
const server = await ServerProcess.start(name, { cpu: 0, nodeArgs: [], env: { BROKER: 'redis', REDIS_PREFIX: `rs-${Date.now()}:`, DEMO: 'false', PRESENCE_TTL_MS: '3000' } })
const peers = await connectAll(N, 20, async () => { const p = await BenchPeer.connect('v1', '127.0.0.1', server.port, () => {}, 'lean'); await p.join('big'); return p }, latencyHistogram())
await admin.config('SET', 'slowlog-log-slower-than', '300')
await admin.slowlog('RESET')
await new Promise(r => setTimeout(r, 6000))
const log = await admin.slowlog('GET', 1000) as [number, number, number, string[]][]
const refresh = log.filter(e => e[3][0] === 'evalsha').map(e => e[2] / 1000)
refresh.sort((a, b) => b - a)
console.log(name, N, 'evalsha over 0.3 ms:', refresh.length, 'max', refresh.slice(0, 8).map(x => x.toFixed(2)).join(' '), 'sum', refresh.reduce((a, b) => a + b, 0).toFixed(1), 'other:', log.filter(e => e[3][0] !== 'evalsha').map(e => `${e[3][0]}:${(e[2]/1000).toFixed(1)}`).join(' '))
for (const p of peers) p.destroy()
await server.stop(30000)
await admin.config('SET', 'slowlog-log-slower-than', '10000')
await admin.quit()
