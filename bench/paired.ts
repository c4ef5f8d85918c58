import { parseArgs } from 'node:util'
import { runDeliveries, type DeliveryResult, type DeliveryWorkload, type Target } from './loadgen.js'
import { CLIENT_KINDS, isClientKind } from './peer.js'
import { SERVER_NAMES, ServerProcess, TASKLESS_SERVERS, TASKSET, applyPrevFlag, pinSelf, type ServerName } from './server-process.js'
import { median, round } from './stats.js'
import { TASK_NAMES, runTasksAlternating, type TaskNameResult, type TaskResult, type TaskWorkload } from './tasks.js'
import { runPublishTurns, type TurnsResult, type TurnsWorkload } from './turns.js'
import { WORKLOAD_NAMES, buildWorkload, warmupFor, type Workload, type WorkloadName } from './workloads.js'

/**
 * Two servers under the same delivery workload at the same time, both on the server core, each with its
 * own clients. This VM's speed drifts by tens of percent from one minute to the next, which can decide a
 * comparison of medians taken minutes apart; run side by side, both servers see the same machine. Meant
 * for light workloads (latency, overload), where the two together stay well below one core. The two
 * swap places every run, and each run reports both latency and server CPU per delivery.
 *
 * With --workload=tasks the two run sequential task round trips taking turns (one to each, one in flight
 * in all), so each round trip is timed alone on the same minute of the machine. --workload=turns does the
 * same with publishes to the latency workload's rooms (10 rooms of 10): one publish in flight, awaited
 * until every member got it, then one to the other server; it measures a publish's own path, with
 * nothing queued in front of it. --gap=MS idles that long after each publish, so that the servers sleep
 * between publishes as they do at a fixed rate.
 *
 *   node --import=tsx bench/paired.ts --servers=switchboard,ws --workload=latency --repeats=6
 *   node --import=tsx bench/paired.ts --servers=switchboard,ws --client=ws   # receivers on the ws package's client
 *   node --import=tsx bench/paired.ts --servers=switchboard,switchboard-prev --prev=HEAD~1   # against a revision
 *   node --import=tsx bench/paired.ts --servers=switchboard,switchboard-prev --prev=HEAD --node-args=--single-threaded
 *     # Node flags for the first server only: an A/B of one flag
 *   node --import=tsx bench/paired.ts --servers=switchboard,ws --workload=tasks --repeats=8
 *   node --import=tsx bench/paired.ts --servers=switchboard,ws --workload=turns --repeats=8 --client=ws
 *   node --import=tsx bench/paired.ts --servers=switchboard,ws-features --workload=turns --gap=1 --write-timing
 *     # also each server's own time from reading a publish to its first and last member's write
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
    warmup: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    client: { type: 'string', default: 'lean' },
    prev: { type: 'string' },
    'node-args': { type: 'string', default: '' },
    gap: { type: 'string', default: '0' },
    'write-timing': { type: 'boolean', default: false }
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
// Unless given, the workload's own warm-up (warmupFor): longer for the light workloads.
const warmupMs = values.warmup === undefined ? undefined : Number(values.warmup) * 1000
if (!(duration > 0) || !(warmupMs === undefined || warmupMs >= 0) || !(Number(values.gap) >= 0)) {
  console.error('--duration takes a positive number of seconds, --warmup and --gap zero or more')
  process.exit(2)
}
const client = values.client
if (!isClientKind(client)) {
  console.error(`--client takes one of ${CLIENT_KINDS.join(', ')}`)
  process.exit(2)
}
const sizing = smoke ? { smoke, durationMs: 600, client } : { smoke, warmupMs, durationMs: duration * 1000, client }
type PairedWorkload = Workload | { kind: 'turns', spec: TurnsWorkload }
const workload: PairedWorkload | undefined = (values.workload as string) === 'turns'
  // The latency workload's rooms, one publish at a time instead of 1000 a second.
  ? { kind: 'turns', spec: { rooms: smoke ? 2 : 10, members: 10, payloadBytes: 100, client, warmupMs: warmupFor('turns', sizing), durationMs: sizing.durationMs, gapMs: Number(values.gap) } }
  : WORKLOAD_NAMES.includes(workloadName) ? buildWorkload(workloadName, sizing) : undefined
if (workload?.kind !== 'deliveries' && workload?.kind !== 'tasks' && workload?.kind !== 'turns') {
  console.error('--workload takes a delivery workload (fanout, saturation, latency, overload), tasks or turns')
  process.exit(2)
}
if (workload.kind === 'tasks' && names.some(name => TASKLESS_SERVERS.includes(name))) {
  console.error(`--workload=tasks does not run on ${TASKLESS_SERVERS.join(', ')}`)
  process.exit(2)
}
const pinned = !smoke && TASKSET && pinSelf(1)
const repeats = smoke ? 1 : Number(values.repeats)
if (!Number.isInteger(repeats) || repeats < 1) {
  console.error('--repeats takes a whole number of at least 1')
  process.exit(2)
}
const firstNodeArgs = (values['node-args'] ?? '').split(' ').filter(arg => arg !== '')
const writeTiming = values['write-timing'] === true
if (writeTiming && (workload.kind !== 'turns' || names.includes('bun'))) {
  console.error('--write-timing takes --workload=turns and two Node servers')
  process.exit(2)
}
const timingArgs = writeTiming ? [`--import=${new URL('write-timing.mjs', import.meta.url).href}`] : []
const timingEnv = workload.kind === 'turns' && writeTiming ? { WRITE_TIMING_WRITES: String(workload.spec.members) } : undefined
let faulty = false

const lowerP50 = new Map(names.map(name => [name, 0]))
// Per-run ratios of the first server to the second: both ran on the same machine at the same moment.
const ratios: { p50: number[], p99: number[], cpu: number[] } = { p50: [], p99: [], cpu: [] }
/** Tasks: the same per task name. */
const taskRatios = new Map(TASK_NAMES.map(name => [name, { p50: [] as number[], p99: [] as number[] }]))
/** Turns: per delivery, and to the last member of each publish. */
const turnRatios = { p50: [] as number[], p99: [] as number[], lastP50: [] as number[] }
/** --write-timing: per-run ratios of the servers' own read-to-write times. */
const writeTimingRatios = { first: [] as number[], last: [] as number[] }
/** Server CPU µs per delivery in the measured window of the last phase: steadier than latency under steal. */
const cpuPerDelivery = (result: Awaited<ReturnType<typeof runDeliveries>>): number => {
  const phase = result.phases.at(-1)
  return phase === undefined || phase.deliveriesPerSec === 0 ? NaN : phase.usage.serverCpuPct * 10_000 / phase.deliveriesPerSec
}
const targetOf = (server: ServerProcess): Target => ({ dialect: server.dialect, host: server.host, port: server.port, pid: server.pid })

async function deliveriesRun (repeat: number, servers: ServerProcess[], order: number[], spec: DeliveryWorkload): Promise<void> {
  // Started in `order`, so that neither server's clients always connect first.
  const settled = await Promise.all(order.map(i => runDeliveries(targetOf(servers[i] as ServerProcess), spec)))
  const inNameOrder = [0, 1].map(i => settled[order.indexOf(i)] as DeliveryResult)
  const latencies = inNameOrder.map(result => (result.phases[result.phases.length - 1] as (typeof result.phases)[number]).latencyMs)
  const [a, b] = latencies as [typeof latencies[number], typeof latencies[number]]
  if (inNameOrder.some(result => result.lost > 0 || result.duplicates > 0 || result.reordered > 0 || result.misrouted > 0)) faulty = true
  const winner = a.p50 <= b.p50 ? names[0] as ServerName : names[1] as ServerName
  lowerP50.set(winner, (lowerP50.get(winner) ?? 0) + 1)
  ratios.p50.push(a.p50 / b.p50)
  ratios.p99.push(a.p99 / b.p99)
  const cpu = inNameOrder.map(cpuPerDelivery)
  ratios.cpu.push((cpu[0] as number) / (cpu[1] as number))
  console.log(JSON.stringify({
    repeat,
    first: names[order[0] as number],
    ...Object.fromEntries(names.map((name, i) => [name, {
      ...latencies[i],
      lost: inNameOrder[i]?.lost,
      stealPct: inNameOrder[i]?.phases.at(-1)?.usage.stealPct,
      serverCpuUsPerDelivery: round(cpu[i] as number, 2),
      duplicates: inNameOrder[i]?.duplicates,
      // Every phase, for workloads with more than one (overload: unloaded, then loaded).
      phases: Object.fromEntries((inNameOrder[i]?.phases ?? []).map(phase => [phase.name, phase.latencyMs]))
    }]))
  }))
}

async function tasksRun (repeat: number, servers: ServerProcess[], order: number[], spec: TaskWorkload): Promise<void> {
  const inOrder = await runTasksAlternating([targetOf(servers[order[0] as number] as ServerProcess), targetOf(servers[order[1] as number] as ServerProcess)], spec)
  const results = [0, 1].map(i => inOrder[order.indexOf(i)] as TaskResult)
  const [a, b] = results as [TaskResult, TaskResult]
  for (const name of TASK_NAMES) {
    const first = a.byTask[name] as TaskNameResult
    const second = b.byTask[name] as TaskNameResult
    if (first.failures > 0 || second.failures > 0) faulty = true
    taskRatios.get(name)?.p50.push(first.latencyMs.p50 / second.latencyMs.p50)
    taskRatios.get(name)?.p99.push(first.latencyMs.p99 / second.latencyMs.p99)
  }
  console.log(JSON.stringify({
    repeat,
    first: names[order[0] as number],
    ...Object.fromEntries(names.map((name, i) => [name, Object.fromEntries(TASK_NAMES.map(task => {
      const r = results[i]?.byTask[task] as TaskNameResult
      return [task, { p50: r.latencyMs.p50, p99: r.latencyMs.p99, roundTripsPerSec: r.roundTripsPerSec, failures: r.failures }]
    }))]))
  }))
}

async function turnsRun (repeat: number, servers: ServerProcess[], order: number[], spec: TurnsWorkload): Promise<void> {
  const restartTiming = writeTiming ? () => { for (const server of servers) process.kill(server.pid, 'SIGWINCH') } : undefined
  const inOrder = await runPublishTurns([targetOf(servers[order[0] as number] as ServerProcess), targetOf(servers[order[1] as number] as ServerProcess)], spec, restartTiming)
  const [a, b] = [0, 1].map(i => inOrder[order.indexOf(i)] as TurnsResult) as [TurnsResult, TurnsResult]
  if (a.missing > 0 || b.missing > 0) faulty = true
  turnRatios.p50.push(a.deliveryMs.p50 / b.deliveryMs.p50)
  turnRatios.p99.push(a.deliveryMs.p99 / b.deliveryMs.p99)
  turnRatios.lastP50.push(a.lastMs.p50 / b.lastMs.p50)
  console.log(JSON.stringify({ repeat, first: names[order[0] as number], [names[0] as string]: a, [names[1] as string]: b }))
}

/** The write-timing line a server printed when it was stopped. */
function writeTimingOf (server: ServerProcess): { chunks: number, firstUs: number, lastUs: number } {
  const line = server.lastOutput.split('\n').findLast(text => text.startsWith('write-timing '))
  if (line === undefined) throw new Error(`${server.name} printed no write-timing line`)
  return JSON.parse(line.slice('write-timing '.length)) as { chunks: number, firstUs: number, lastUs: number }
}

for (let repeat = 1; repeat <= repeats; repeat++) {
  // The two swap places every run: the one started and connected first was slower at p50 in a run of
  // the same code against itself (BENCHMARKS.md), so neither may always be first.
  const order = repeat % 2 === 1 ? [0, 1] : [1, 0]
  const started = await Promise.all(order.map(i => ServerProcess.start(names[i] as ServerName, {
    cpu: pinned ? 0 : undefined,
    nodeArgs: [...timingArgs, ...(i === 0 ? firstNodeArgs : [])],
    env: timingEnv
  })))
  /** By the index in `names`, whichever order they started in. */
  const servers = [0, 1].map(i => started[order.indexOf(i)] as ServerProcess)
  try {
    if (workload.kind === 'tasks') await tasksRun(repeat, servers, order, workload.spec)
    else if (workload.kind === 'turns') await turnsRun(repeat, servers, order, workload.spec)
    else await deliveriesRun(repeat, servers, order, workload.spec)
  } finally {
    await Promise.all(servers.map(server => server.stop()))
  }
  if (writeTiming) {
    const [a, b] = servers.map(writeTimingOf) as [ReturnType<typeof writeTimingOf>, ReturnType<typeof writeTimingOf>]
    writeTimingRatios.first.push(a.firstUs / b.firstUs)
    writeTimingRatios.last.push(a.lastUs / b.lastUs)
    console.log(JSON.stringify({ repeat, writeTiming: { [names[0] as string]: a, [names[1] as string]: b } }))
  }
}
const spread = (values: number[]): string => `${round(median(values), 2)}× (${round(Math.min(...values), 2)}–${round(Math.max(...values), 2)})`
if (workload.kind === 'turns') {
  console.log(`${names[0]} ÷ ${names[1]}, median of the per-run ratios (range): delivery p50 ${spread(turnRatios.p50)}, p99 ${spread(turnRatios.p99)}; last member p50 ${spread(turnRatios.lastP50)}`)
  if (writeTiming) console.log(`${names[0]} ÷ ${names[1]}, the server's own time from reading a publish (median per run): to its first write ${spread(writeTimingRatios.first)}, to the last member's ${spread(writeTimingRatios.last)}`)
} else if (workload.kind === 'tasks') {
  for (const [task, { p50, p99 }] of taskRatios) {
    console.log(`${task}: ${names[0]} ÷ ${names[1]}, median of the per-run ratios (range): p50 ${spread(p50)}, p99 ${spread(p99)}`)
  }
} else {
  console.log(`lower p50 in: ${[...lowerP50].map(([name, wins]) => `${name} ${wins}`).join(', ')} of ${repeats} runs`)
  console.log(`${names[0]} ÷ ${names[1]}, median of the per-run ratios (range): p50 ${spread(ratios.p50)}, p99 ${spread(ratios.p99)}, server CPU per delivery ${spread(ratios.cpu)}`)
}
if (faulty) {
  console.error(workload.kind === 'tasks'
    ? 'a task failed or answered wrongly'
    : workload.kind === 'turns' ? 'a member did not get a publish within a second' : 'a reader lost a message, got one twice or out of order, or got one from another room')
  process.exit(1)
}
