import { Agent, request } from 'node:http'
import { parseArgs } from 'node:util'
import { ServerProcess, TASKSET, metricSamples, pinSelf } from './server-process.js'

const USAGE = `Usage: node --import=tsx bench/history-storm.ts [options]
  --rooms=100000      distinct rooms published to
  --rounds=3          publishes per room
  --payload=1000      bytes of JSON data per message
  --max-bytes=67108864  HISTORY_MAX_BYTES of the server
  --concurrency=64    HTTP requests in flight
  --smoke             1000 rooms, 1 round, 1 MiB bound; fails if the bound does not hold`

const { values: flags } = parseArgs({
  options: {
    rooms: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
    payload: { type: 'string', default: '1000' },
    'max-bytes': { type: 'string', default: String(64 * 1024 * 1024) },
    concurrency: { type: 'string', default: '64' },
    smoke: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log(USAGE)
  process.exit(0)
}

function positive (value: string, name: string): number {
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed <= 0) {
    console.error(`--${name} must be a positive integer\n${USAGE}`)
    process.exit(2)
  }
  return parsed
}

const smoke = flags.smoke
const rooms = smoke ? 1000 : positive(flags.rooms, 'rooms')
const rounds = smoke ? 1 : positive(flags.rounds, 'rounds')
const payloadBytes = positive(flags.payload, 'payload')
const maxBytes = smoke ? 1024 * 1024 : positive(flags['max-bytes'], 'max-bytes')
const concurrency = positive(flags.concurrency, 'concurrency')
const API_KEY = 'storm'

/**
 * A publish storm over many rooms through the HTTP API, the server's memory sampled as it runs: does
 * HISTORY_MAX_BYTES bound what history costs? The server runs pinned to CPU 0, this process to CPU 1.
 */
const pinned = !smoke && TASKSET && pinSelf(1)
const server = await ServerProcess.start('switchboard', {
  cpu: pinned ? 0 : undefined,
  nodeArgs: [],
  env: { API_KEY, HISTORY_MAX_BYTES: String(maxBytes) }
})
try {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const body = JSON.stringify({ data: { text: 'x'.repeat(Math.max(0, payloadBytes - 12)) } })
  const post = (room: string): Promise<void> => new Promise((resolve, reject) => {
    const req = request({
      agent,
      host: '127.0.0.1',
      port: server.port,
      method: 'POST',
      path: `/api/rooms/${room}/messages`,
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
    }, response => {
      response.resume()
      response.on('end', () => { response.statusCode === 202 ? resolve() : reject(new Error(`HTTP ${response.statusCode}`)) })
    })
    req.on('error', reject)
    req.end(body)
  })

  // Let the server settle before its baseline; the sampler then runs until the storm ends.
  await new Promise(resolve => setTimeout(resolve, 1000))
  const baseline = server.sample()
  let peakRss = baseline.rssBytes
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, server.sample().rssBytes) }, 100)
  const started = performance.now()
  const total = rooms * rounds
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      const index = next++
      await post(`storm-${index % rooms}`)
    }
  }))
  const seconds = (performance.now() - started) / 1000
  // RSS right after the storm still holds garbage V8 has not collected; a few idle seconds let it settle.
  await new Promise(resolve => setTimeout(resolve, 5000))
  clearInterval(sampler)
  const end = server.sample()
  peakRss = Math.max(peakRss, end.rssBytes)
  const metrics = await server.scrapeMetrics()
  const gauge = (name: string): number => Object.values(metricSamples(metrics, name))[0] ?? 0
  const result = {
    rooms,
    rounds,
    payloadBytes,
    maxBytesMiB: maxBytes / 2 ** 20,
    publishesPerSec: Math.round(total / seconds),
    rssBaselineMiB: +(baseline.rssBytes / 2 ** 20).toFixed(1),
    rssPeakMiB: +(peakRss / 2 ** 20).toFixed(1),
    rssGrowthMiB: +((peakRss - baseline.rssBytes) / 2 ** 20).toFixed(1),
    rssSettledMiB: +(end.rssBytes / 2 ** 20).toFixed(1),
    heapUsedMiB: +(gauge('nodejs_heap_size_used_bytes') / 2 ** 20).toFixed(1),
    historyBytesMiB: +(gauge('ws_history_bytes') / 2 ** 20).toFixed(1),
    historyStreams: gauge('ws_history_streams'),
    historyMessages: gauge('ws_history_messages'),
    evictedStreams: gauge('ws_history_evicted_streams_total'),
    pinned
  }
  console.log(JSON.stringify(result))
  const bounded = gauge('ws_history_bytes') <= maxBytes
  console.log(`history ${result.historyBytesMiB} MiB of ${result.maxBytesMiB} MiB allowed; RSS grew ${result.rssGrowthMiB} MiB (peak ${result.rssPeakMiB} MiB, ${result.rssSettledMiB} MiB 5 s later, heap used ${result.heapUsedMiB} MiB) over ${total} publishes to ${rooms} rooms at ${result.publishesPerSec}/s`)
  if (!bounded) {
    console.error('the history bound did not hold')
    process.exitCode = 1
  }
  agent.destroy()
} finally {
  await server.stop()
}
