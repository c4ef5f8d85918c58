import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import { runDeliveries } from './loadgen.js'
import { CLIENT_KINDS, isClientKind } from './peer.js'
import { SERVER_NAMES, ServerProcess, TASKSET, ensureOpenFiles, pinSelf, type ServerName } from './server-process.js'
import { median, round } from './stats.js'

const USAGE = `Usage: node --import=tsx bench/room-sizes.ts [options]
How cost grows with work: one room of N members at a fixed offered rate of deliveries (rate = offered / N
messages per second from up to 10 publishers), for each N and server, interleaved.
  --sizes=10,100,1000,10000  members of the room
  --offered=100000           deliveries per second offered at every size
  --servers=switchboard,ws,bun
  --repeats=3 --duration=5 --warmup=3 --client=lean
  --out=bench/results/room-sizes.json   (plot it with bench/room-sizes-plot.ts)
  --smoke                    sizes 10,100 at 2000/s for a second, unpinned: what CI runs`

const { values: flags } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10,100,1000,10000' },
    offered: { type: 'string', default: '100000' },
    servers: { type: 'string', default: 'switchboard,ws,bun' },
    repeats: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3' },
    client: { type: 'string', default: 'lean' },
    out: { type: 'string', default: 'bench/results/room-sizes.json' },
    smoke: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log(USAGE)
  process.exit(0)
}
const smoke = flags.smoke
const sizes = (smoke ? '10,100' : flags.sizes).split(',').map(Number)
const offered = smoke ? 2000 : Number(flags.offered)
const servers = flags.servers.split(',') as ServerName[]
const repeats = smoke ? 1 : Number(flags.repeats)
const durationMs = (smoke ? 1 : Number(flags.duration)) * 1000
const warmupMs = (smoke ? 0.3 : Number(flags.warmup)) * 1000
const client = isClientKind(flags.client) ? flags.client : undefined
const invalid = [
  sizes.some(size => !Number.isInteger(size) || size < 1) && '--sizes takes whole numbers of members',
  !(offered > 0) && '--offered takes a positive rate',
  servers.some(name => !SERVER_NAMES.includes(name) || name === 'socketio') && `--servers takes protocol v1 servers of ${SERVER_NAMES.join(', ')}`,
  !(Number.isInteger(repeats) && repeats >= 1) && '--repeats takes a whole number',
  !(durationMs > 0 && warmupMs >= 0) && '--duration takes a positive number of seconds, --warmup zero or more',
  client === undefined && `--client takes one of ${CLIENT_KINDS.join(', ')}`
].filter(Boolean)
if (invalid.length > 0) {
  console.error(`${invalid.join('\n')}\n${USAGE}`)
  process.exit(2)
}
ensureOpenFiles(Math.max(...sizes) + 1024)
const pinned = !smoke && TASKSET && pinSelf(1)

interface Row {
  size: number
  server: ServerName
  repeat: number
  offeredPerSec: number
  deliveriesPerSec: number
  p50Ms: number
  p99Ms: number
  /** The slowest delivery: at 1 message per second, the time to reach the last member. */
  maxMs: number
  serverCpuPct: number
  /** The hypervisor's steal over the window: a noisy minute shows here. */
  stealPct: number
  lost: number
  duplicates: number
}

const rows: Row[] = []
const started = new Date()
let faulty = false
for (let repeat = 1; repeat <= repeats; repeat++) {
  for (const size of sizes) {
    for (const name of servers) {
      const server = await ServerProcess.start(name, { cpu: pinned ? 0 : undefined, nodeArgs: [] })
      try {
        const result = await runDeliveries({ dialect: server.dialect, host: server.host, port: server.port, pid: server.pid }, {
          clients: size,
          rooms: 1,
          publishers: Math.min(size, 10),
          slowReaders: 0,
          payloadBytes: 100,
          client,
          connectConcurrency: 100,
          phases: [{ name: 'rate', rate: offered / size, window: 0, priorityOf: () => 2, warmupMs, durationMs, slowReadersPause: false }]
        })
        const phase = result.phases[0]
        if (phase === undefined) throw new Error('no phase result')
        const row: Row = {
          size,
          server: name,
          repeat,
          offeredPerSec: phase.offeredPerSec,
          deliveriesPerSec: phase.deliveriesPerSec,
          p50Ms: phase.latencyMs.p50,
          p99Ms: phase.latencyMs.p99,
          maxMs: phase.latencyMs.max,
          serverCpuPct: phase.usage.serverCpuPct,
          stealPct: phase.usage.stealPct,
          lost: result.lost,
          duplicates: result.duplicates
        }
        // Loss is reported, not a fault: Switchboard sheds past SEND_QUEUE_SIZE (with gap frames) where
        // the baselines buffer without bound, and a 10-member room at this rate is 10k messages/s per reader.
        if (row.duplicates > 0 || server.crashed) faulty = true
        rows.push(row)
        console.log(JSON.stringify(row))
      } finally {
        await server.stop()
      }
    }
  }
}

const medianOf = (size: number, name: ServerName, key: keyof Row): number => median(rows.filter(row => row.size === size && row.server === name).map(row => row[key] as number))
console.log(`\nmedians of ${repeats}: deliveries/s / p99 ms / server CPU % / lost (offered ${offered} deliveries/s)`)
console.log(['members', ...servers].map(cell => cell.padStart(34)).join(''))
for (const size of sizes) {
  const cell = (name: ServerName): string => [round(medianOf(size, name, 'deliveriesPerSec'), 0), round(medianOf(size, name, 'p99Ms'), 2), round(medianOf(size, name, 'serverCpuPct'), 1), medianOf(size, name, 'lost')].join(' / ')
  console.log([String(size), ...servers.map(cell)].map(text => text.padStart(34)).join(''))
}
mkdirSync(dirname(flags.out), { recursive: true })
writeFileSync(flags.out, JSON.stringify({ started: started.toISOString(), offered, client, pinned, loadavg: loadavg(), rows }, null, 1))
console.log(`wrote ${flags.out}`)
if (faulty) {
  console.error('a reader got a message twice, or a server crashed')
  process.exit(1)
}
