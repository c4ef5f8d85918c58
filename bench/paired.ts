import { parseArgs } from 'node:util'
import { runDeliveries } from './loadgen.js'
import { CLIENT_KINDS, isClientKind } from './peer.js'
import { SERVER_NAMES, ServerProcess, TASKSET, applyPrevFlag, pinSelf, type ServerName } from './server-process.js'
import { median, round } from './stats.js'
import { WORKLOAD_NAMES, buildWorkload, type WorkloadName } from './workloads.js'

/**
 * Two servers under the same delivery workload at the same time, both on the server core, each with its
 * own clients. This VM's speed drifts by tens of percent from one minute to the next, which can decide a
 * comparison of medians taken minutes apart; run side by side, both servers see the same machine. Meant
 * for light workloads (latency, overload), where the two together stay well below one core. The two
 * swap places every run, and each run reports both latency and server CPU per delivery.
 *
 *   node --import=tsx bench/paired.ts --servers=switchboard,ws --workload=latency --repeats=6
 *   node --import=tsx bench/paired.ts --servers=switchboard,ws --client=ws   # receivers on the ws package's client
 *   node --import=tsx bench/paired.ts --servers=switchboard,switchboard-prev --prev=HEAD~1   # against a revision
 *   node --import=tsx bench/paired.ts --servers=switchboard,switchboard-prev --prev=HEAD --node-args=--single-threaded
 *     # Node flags for the first server only: an A/B of one flag
 *
 * --smoke runs the workload at its smoke size once, for CI; any run exits 1 when a reader lost a message
 * or got one twice or out of order.
 */
const { values } = parseArgs({
  options: {
    servers: { type: 'string', default: 'switchboard,ws' },
    workload: { type: 'string', default: 'latency' },
    repeats: { type: 'string', default: '6' },
    duration: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '3' },
    smoke: { type: 'boolean', default: false },
    client: { type: 'string', default: 'lean' },
    prev: { type: 'string' },
    'node-args': { type: 'string', default: '' }
  }
})
const smoke = values.smoke === true

const names = (values.servers ?? '').split(',') as ServerName[]
if (names.length !== 2 || !names.every(name => SERVER_NAMES.includes(name) && name !== 'socketio')) {
  console.error(`--servers takes two of ${SERVER_NAMES.filter(name => name !== 'socketio').join(', ')}`)
  process.exit(2)
}
applyPrevFlag(values.prev, names)
const workloadName = values.workload as WorkloadName
const duration = Number(values.duration)
const warmup = Number(values.warmup)
if (!(duration > 0) || !(warmup >= 0)) {
  console.error('--duration takes a positive number of seconds, --warmup zero or more')
  process.exit(2)
}
const client = values.client
if (!isClientKind(client)) {
  console.error(`--client takes one of ${CLIENT_KINDS.join(', ')}`)
  process.exit(2)
}
const sizing = smoke ? { smoke, warmupMs: 200, durationMs: 600, client } : { smoke, warmupMs: warmup * 1000, durationMs: duration * 1000, client }
const workload = WORKLOAD_NAMES.includes(workloadName) ? buildWorkload(workloadName, sizing) : undefined
if (workload?.kind !== 'deliveries') {
  console.error('--workload takes a delivery workload: fanout, saturation, latency or overload')
  process.exit(2)
}
const pinned = !smoke && TASKSET && pinSelf(1)
const repeats = smoke ? 1 : Number(values.repeats)
if (!Number.isInteger(repeats) || repeats < 1) {
  console.error('--repeats takes a whole number of at least 1')
  process.exit(2)
}
const firstNodeArgs = (values['node-args'] ?? '').split(' ').filter(arg => arg !== '')
let faulty = false

const lowerP50 = new Map(names.map(name => [name, 0]))
// Per-run ratios of the first server to the second: both ran on the same machine at the same moment.
const ratios: { p50: number[], p99: number[], cpu: number[] } = { p50: [], p99: [], cpu: [] }
/** Server CPU µs per delivery in the measured window of the last phase: steadier than latency under steal. */
const cpuPerDelivery = (result: Awaited<ReturnType<typeof runDeliveries>>): number => {
  const phase = result.phases.at(-1)
  return phase === undefined || phase.deliveriesPerSec === 0 ? NaN : phase.usage.serverCpuPct * 10_000 / phase.deliveriesPerSec
}
for (let repeat = 1; repeat <= repeats; repeat++) {
  // The two swap places every run: the one started and connected first was slower at p50 in a run of
  // the same code against itself (BENCHMARKS.md), so neither may always be first.
  const order = repeat % 2 === 1 ? [0, 1] : [1, 0]
  const started = await Promise.all(order.map(i => ServerProcess.start(names[i] as ServerName, { cpu: pinned ? 0 : undefined, nodeArgs: i === 0 ? firstNodeArgs : [] })))
  /** By the index in `names`, whichever order they started in. */
  const byName = <T>(inOrder: T[]): T[] => [0, 1].map(i => inOrder[order.indexOf(i)] as T)
  const servers = byName(started)
  try {
    const results = byName(await Promise.all(order.map(i => {
      const server = servers[i] as ServerProcess
      return runDeliveries({ dialect: server.dialect, host: server.host, port: server.port, pid: server.pid }, workload.spec)
    })))
    const latencies = results.map(result => (result.phases[result.phases.length - 1] as (typeof result.phases)[number]).latencyMs)
    const [a, b] = latencies as [typeof latencies[number], typeof latencies[number]]
    if (results.some(result => result.lost > 0 || result.duplicates > 0 || result.reordered > 0 || result.misrouted > 0)) faulty = true
    const winner = a.p50 <= b.p50 ? names[0] as ServerName : names[1] as ServerName
    lowerP50.set(winner, (lowerP50.get(winner) ?? 0) + 1)
    ratios.p50.push(a.p50 / b.p50)
    ratios.p99.push(a.p99 / b.p99)
    const cpu = results.map(cpuPerDelivery)
    ratios.cpu.push((cpu[0] as number) / (cpu[1] as number))
    console.log(JSON.stringify({
      repeat,
      first: names[order[0] as number],
      ...Object.fromEntries(names.map((name, i) => [name, {
        ...latencies[i],
        lost: results[i]?.lost,
        stealPct: results[i]?.phases.at(-1)?.usage.stealPct,
        serverCpuUsPerDelivery: round(cpu[i] as number, 2),
        duplicates: results[i]?.duplicates,
        // Every phase, for workloads with more than one (overload: unloaded, then loaded).
        phases: Object.fromEntries((results[i]?.phases ?? []).map(phase => [phase.name, phase.latencyMs]))
      }]))
    }))
  } finally {
    await Promise.all(servers.map(server => server.stop()))
  }
}
console.log(`lower p50 in: ${[...lowerP50].map(([name, wins]) => `${name} ${wins}`).join(', ')} of ${repeats} runs`)
const spread = (values: number[]): string => `${round(median(values), 2)}× (${round(Math.min(...values), 2)}–${round(Math.max(...values), 2)})`
console.log(`${names[0]} ÷ ${names[1]}, median of the per-run ratios (range): p50 ${spread(ratios.p50)}, p99 ${spread(ratios.p99)}, server CPU per delivery ${spread(ratios.cpu)}`)
if (faulty) {
  console.error('a reader lost a message, got one twice or out of order, or got one from another room')
  process.exit(1)
}
