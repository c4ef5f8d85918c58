import { BenchPeer } from '../bench/peer.js'
import { ServerProcess, applyPrevFlag, type ServerName } from '../bench/server-process.js'
import { latencyHistogram, summarize } from '../bench/stats.js'

// Sequential joins over Redis: each client connects and joins the same room; the join's reply time.
const prev = process.argv[2] as string
applyPrevFlag(prev, ['switchboard', 'switchboard-prev'])
const N = 400
for (let round = 0; round < 3; round++) {
  for (const name of ['switchboard', 'switchboard-prev'] as ServerName[]) {
    const server = await ServerProcess.start(name, { cpu: 0, nodeArgs: [], env: { BROKER: 'redis', REDIS_PREFIX: `jl-${Date.now()}:`, DEMO: 'false' } })
    const h = latencyHistogram()
    const peers: BenchPeer[] = []
    for (let i = 0; i < N; i++) {
      const p = await BenchPeer.connect('v1', '127.0.0.1', server.port, () => {}, 'lean')
      const t0 = performance.now()
      await p.join('lobby')
      if (i >= 50) h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)))
      peers.push(p)
    }
    for (const p of peers) p.destroy()
    await server.stop()
    console.log(round, name, JSON.stringify(summarize(h)))
  }
}
