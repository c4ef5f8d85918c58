import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runIdle, type IdleResult } from './idle.js'
import { runDeliveries, type DeliveryResult, type Target } from './loadgen.js'
import { DEFAULT_SERVERS, ROOT, SERVER_NAMES, ServerProcess, TASKLESS_SERVERS, TASKSET, applyPrevFlag, ensureOpenFiles, metricSamples, openFileLimit, pinSelf, type ServerName } from './server-process.js'
import { CLIENT_KINDS, isClientKind } from './peer.js'
import { LOADGEN_BOTTLENECK_PCT, median, round, type LatencySummary, type WindowUsage } from './stats.js'
import { measureSweep, type SweepResult } from './sweep.js'
import { TASK_NAMES, runTasksDirect, runTasksOverWebSocket, runTcpEcho, type TaskResult } from './tasks.js'
import { DEFAULT_WORKLOADS, LIGHT_LOAD_WARMUP_MS, WARMUP_MS, WORKLOAD_NAMES, buildWorkload, warmupFor, type Workload, type WorkloadName } from './workloads.js'

const USAGE = `Usage: npm run bench -- [options]
  --workload=${DEFAULT_WORKLOADS.join(',')}   (the default; also deflate, which compares
                     switchboard with switchboard-deflate whatever --servers says)
  --servers=${DEFAULT_SERVERS.join(',')}   (the default; node-floor is the least a
                     Node room server costs, WebSocket framing by hand on node:net; also
                     ws-features (bare ws with Switchboard's per-op checks and history written
                     inline), features-in-app (the same handler beside the whole Switchboard app
                     in one Fastify server), switchboard-deflate, switchboard-prev; tasks: Socket.IO, Bun and node-floor are
                     left out, direct piscina and a TCP echo are added)
  --prev=REV         switchboard-prev is Switchboard at git revision REV; it joins the default servers
  --repeats=3        runs per (workload, server), interleaved across servers; medians are reported
  --duration=5       measured seconds per workload phase
  --warmup=S         seconds of the same traffic before each measured phase (JIT, heap growth);
                     by default ${WARMUP_MS / 1000}, and ${LIGHT_LOAD_WARMUP_MS / 1000} for latency, whose thousand
                     publishes a second take that long to get every hot function optimized
  --client=lean      the load generator's WebSocket client: lean (bench/client.ts) or ws (the ws
                     package with its defaults, as users run it); deflate always uses ws
  --payload=100      bytes of each fanout and saturation message (e.g. 1024, 16384)
  --connections=5000 connections of idle and idle-rooms (this machine's hard open-files limit, 20000
                     per process, caps it near 18,000)
  --smoke            every workload at tiny sizes for a few seconds, unpinned; fails on any loss
  --profile=DIR      run each server under --cpu-prof, writing profiles to DIR/<server>`

const { values: flags } = parseArgs({
  options: {
    workload: { type: 'string' },
    servers: { type: 'string' },
    repeats: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    profile: { type: 'string' },
    prev: { type: 'string' },
    client: { type: 'string', default: 'lean' },
    payload: { type: 'string' },
    connections: { type: 'string' },
    help: { type: 'boolean', default: false }
  }
})

if (flags.help) {
  console.log(USAGE)
  process.exit(0)
}

function listFlag<T extends string> (value: string | undefined, allowed: readonly T[], fallback: readonly T[], what: string): T[] {
  if (value === undefined) return [...fallback]
  const chosen = value.split(',').map(v => v.trim()).filter(v => v !== '')
  const unknown = chosen.filter(v => !allowed.includes(v as T))
  if (unknown.length > 0 || chosen.length === 0) {
    console.error(`unknown ${what}: ${unknown.join(', ') || '(none given)'}\n${USAGE}`)
    process.exit(2)
  }
  return chosen as T[]
}

function numberFlag (value: string | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!Number.isFinite(parsed) || parsed <= 0) {
    console.error(`--${what} must be a positive number\n${USAGE}`)
    process.exit(2)
  }
  return parsed
}

const smoke = flags.smoke
const workloadNames = listFlag(flags.workload, WORKLOAD_NAMES, DEFAULT_WORKLOADS, 'workload')
const serverNames = listFlag(flags.servers, SERVER_NAMES, flags.prev === undefined ? DEFAULT_SERVERS : [...DEFAULT_SERVERS, 'switchboard-prev'], 'server')
applyPrevFlag(flags.prev, serverNames)
const repeats = Math.round(numberFlag(flags.repeats, smoke ? 1 : 3, 'repeats'))
const durationMs = numberFlag(flags.duration, smoke ? 0.6 : 5, 'duration') * 1000
const warmupMs = flags.warmup === undefined ? undefined : numberFlag(flags.warmup, 0, 'warmup') * 1000
const client = flags.client
if (!isClientKind(client)) {
  console.error(`--client takes one of ${CLIENT_KINDS.join(', ')}\n${USAGE}`)
  process.exit(2)
}
const payloadBytes = flags.payload === undefined ? undefined : Math.round(numberFlag(flags.payload, 100, 'payload'))
const idleConnections = flags.connections === undefined ? undefined : Math.round(numberFlag(flags.connections, 5000, 'connections'))
const sizing = { smoke, warmupMs, durationMs, client, payloadBytes, idleConnections }
const workloads = new Map(workloadNames.map(name => [name, buildWorkload(name, sizing)]))

const neededFiles = Math.max(...[...workloads.values()].map(w => (w.kind === 'idle' ? w.spec.connections : 2000))) + 1024
ensureOpenFiles(neededFiles)

const cores = availableParallelism()
const pinned = !smoke && TASKSET && cores >= 2
if (pinned) {
  pinSelf(1)
} else if (!smoke) {
  console.error(TASKSET ? `warning: ${cores} CPU(s); running unpinned` : 'warning: taskset not found; running unpinned')
}

type Contender = ServerName | 'piscina' | 'tcp-echo'
type Line = Record<string, unknown> & { workload: WorkloadName, server: Contender, repeat: number, ok: boolean, problems: string[] }

function contendersFor (workload: Workload): Contender[] {
  if (workload.kind === 'deliveries') return workload.servers ?? serverNames
  if (workload.kind !== 'tasks') return serverNames
  // The protocol v1 servers run tasks (the baselines hand them straight to piscina). Two floors: piscina
  // called from this process with no network in between, and a TCP echo with no worker in between.
  return [...serverNames.filter(name => !TASKLESS_SERVERS.includes(name)), 'piscina', 'tcp-echo']
}

const pickLatency = ({ p50, p90, p99, max }: LatencySummary): Omit<LatencySummary, 'count'> => ({ p50, p90, p99, max })

function usageFields (usage: WindowUsage | undefined): Record<string, unknown> {
  if (usage === undefined) return {}
  if (usage.sameProcess) {
    // Direct piscina runs in this process: its CPU is the pool's, not a load generator's.
    return { serverCpuPct: usage.serverCpuPct, loadgenBottleneck: false }
  }
  return {
    serverCpuPct: usage.serverCpuPct,
    serverRssMiB: usage.serverRssMiB,
    serverPeakRssMiB: usage.serverPeakRssMiB,
    loadgenCpuPct: usage.loadgenCpuPct,
    loadgenBottleneck: usage.loadgenCpuPct >= LOADGEN_BOTTLENECK_PCT,
    stealPct: usage.stealPct
  }
}

function deliveryLine (name: WorkloadName, result: DeliveryResult): Record<string, unknown> {
  const main = result.phases[result.phases.length - 1]
  if (main === undefined) throw new Error('a delivery workload has at least one phase')
  const fields: Record<string, unknown> = {
    deliveriesPerSec: main.deliveriesPerSec,
    offeredPerSec: main.offeredPerSec,
    publishedPerSec: main.publishedPerSec,
    latencyMs: pickLatency(main.latencyMs),
    lost: result.lost,
    undelivered: result.undelivered,
    duplicates: result.duplicates,
    reordered: result.reordered,
    misrouted: result.misrouted,
    wireBytesPerDelivery: main.wireBytesPerDelivery,
    connectMs: result.connectMs,
    ...usageFields(main.usage),
    // Server CPU per delivery: comparable between servers that delivered different rates.
    serverCpuUsPerDelivery: main.usage === undefined || main.deliveriesPerSec === 0 ? undefined : round(main.usage.serverCpuPct * 1e4 / main.deliveriesPerSec, 3)
  }
  if (name === 'overload') {
    const unloaded = result.phases[0]
    const critical = main.byPriority?.critical
    if (unloaded === undefined || critical === undefined) throw new Error('overload runs an unloaded and a mixed-priority phase')
    fields.criticalMs = { unloaded: pickLatency(unloaded.latencyMs), loaded: pickLatency(critical) }
    fields.lostByPriority = result.lostByPriority
    fields.lostSlow = result.lostSlow
    fields.lostSlowByPriority = result.lostSlowByPriority
    fields.undeliveredSlow = result.undeliveredSlow
    fields.closedByServerSlow = result.closedByServerSlow
  }
  return {
    ...fields,
    closedByServer: result.closedByServer,
    errorFrames: result.errorFrames,
    unexpectedFrames: result.unexpectedFrames,
    phases: result.phases
  }
}

function deliveryProblems (result: DeliveryResult): string[] {
  const problems: string[] = []
  if (result.lost > 0) problems.push(`${result.lost} messages lost by normal readers`)
  if (result.undelivered > 0) problems.push(`${result.undelivered} messages not delivered to normal readers by the end of the drain`)
  if (result.duplicates > 0) problems.push(`${result.duplicates} duplicate deliveries`)
  if (result.reordered > 0) problems.push(`${result.reordered} deliveries after a later message of the same publisher and priority`)
  if (result.misrouted > 0) problems.push(`${result.misrouted} deliveries to a client outside the room`)
  if (Object.keys(result.closedByServer).length > 0) problems.push(`connections closed by the server: ${JSON.stringify(result.closedByServer)}`)
  if (Object.keys(result.errorFrames).length > 0) problems.push(`error frames: ${JSON.stringify(result.errorFrames)}`)
  if (result.unexpectedFrames > 0) problems.push(`${result.unexpectedFrames} unexpected frames`)
  if (result.phases.some(phase => phase.deliveriesPerSec === 0)) problems.push('a phase delivered nothing')
  return problems
}

function idleLine (result: IdleResult): Record<string, unknown> {
  return {
    connections: result.connections,
    rooms: result.rooms,
    connectMs: result.connectMs,
    connectLatencyMs: pickLatency(result.connectLatencyMs),
    rssBeforeMiB: result.rssBeforeMiB,
    rssAfterMiB: result.rssAfterMiB,
    serverRssMiB: result.rssAfterMiB,
    rssPerConnectionKiB: result.rssPerConnectionKiB,
    settled: result.settled,
    ...usageFields(result.usage),
    closedByServer: result.closedByServer
  }
}

function taskLine (result: TaskResult): Record<string, unknown> {
  return {
    tasks: Object.fromEntries(Object.entries(result.byTask).map(([name, r]) => [name, { roundTripsPerSec: r.roundTripsPerSec, latencyMs: pickLatency(r.latencyMs), failures: r.failures }])),
    ...usageFields(result.usage)
  }
}

function taskProblems (result: TaskResult): string[] {
  return Object.entries(result.byTask).flatMap(([name, r]) => [
    ...(r.failures > 0 ? [`${r.failures} ${name} tasks failed or answered wrongly`] : []),
    ...(r.latencyMs.count === 0 ? [`no ${name} task completed`] : [])
  ])
}

async function switchboardDrops (server: ServerProcess): Promise<Record<string, unknown>> {
  const text = await server.scrapeMetrics()
  return {
    serverDropped: metricSamples(text, 'ws_messages_dropped_total'),
    serverSlowConsumerDisconnects: metricSamples(text, 'ws_slow_consumer_disconnects_total')[''] ?? 0
  }
}

async function runOne (name: WorkloadName, workload: Workload, contender: Contender, repeat: number): Promise<Line> {
  const head = { workload: name, server: contender, repeat }
  if (contender === 'piscina') {
    if (workload.kind !== 'tasks') throw new Error('piscina only runs the tasks workload')
    const result = await runTasksDirect(workload.spec)
    return { ...head, ok: true, problems: taskProblems(result), ...taskLine(result) }
  }
  if (contender === 'tcp-echo') {
    if (workload.kind !== 'tasks') throw new Error('the TCP echo only runs the tasks workload')
    const result = await runTcpEcho(workload.spec, pinned ? 0 : undefined)
    return { ...head, ok: true, problems: taskProblems(result), ...taskLine(result) }
  }
  let server: ServerProcess
  try {
    server = await ServerProcess.start(contender, { cpu: pinned ? 0 : undefined, nodeArgs: profileArgs(contender) })
  } catch (error) {
    return { ...head, ok: false, problems: [], error: (error as Error).message }
  }
  const target: Target = { dialect: server.dialect, host: server.host, port: server.port, pid: server.pid }
  try {
    let line: Line
    if (workload.kind === 'deliveries') {
      const result = await runDeliveries(target, workload.spec)
      line = { ...head, ok: true, problems: deliveryProblems(result), ...deliveryLine(name, result) }
      if (contender.startsWith('switchboard') && !server.crashed) Object.assign(line, await switchboardDrops(server))
    } else if (workload.kind === 'idle') {
      const result = await runIdle(target, workload.spec)
      line = { ...head, ok: true, problems: result.closedByServer > 0 ? [`${result.closedByServer} idle connections closed by the server`] : [], ...idleLine(result) }
    } else {
      const result = await runTasksOverWebSocket(target, workload.spec)
      line = { ...head, ok: true, problems: taskProblems(result), ...taskLine(result) }
    }
    if (server.crashed) return { ...line, ok: false, error: server.describeExit() }
    return line
  } catch (error) {
    const reason = server.crashed ? server.describeExit() : (error as Error).stack ?? String(error)
    return { ...head, ok: false, problems: [], error: reason }
  } finally {
    await server.stop(flags.profile === undefined ? 3000 : 30_000)
  }
}

function profileArgs (contender: ServerName): string[] {
  if (flags.profile === undefined) return []
  return ['--cpu-prof', `--cpu-prof-dir=${join(flags.profile, contender)}`]
}

// Table columns per workload kind, read from a result line.
type Column = [label: string, read: (line: Line) => number | undefined]
const at = (line: Line, path: string): number | undefined => {
  let value: unknown = line
  for (const key of path.split('.')) value = (value as Record<string, unknown> | undefined)?.[key]
  return typeof value === 'number' ? value : undefined
}
const col = (label: string, path: string): Column => [label, line => at(line, path)]

const DELIVERY_COLUMNS: Column[] = [
  col('deliveries/s', 'deliveriesPerSec'), col('p50 ms', 'latencyMs.p50'), col('p90 ms', 'latencyMs.p90'),
  col('p99 ms', 'latencyMs.p99'), col('max ms', 'latencyMs.max'), col('lost', 'lost'), col('undeliv.', 'undelivered'), col('dups', 'duplicates'),
  col('connect ms', 'connectMs'), col('srv CPU%', 'serverCpuPct'), col('srv µs/deliv', 'serverCpuUsPerDelivery'), col('srv RSS MiB', 'serverRssMiB'), col('lg CPU%', 'loadgenCpuPct'), col('steal%', 'stealPct')
]
const IDLE_COLUMNS = [
  col('connections', 'connections'), col('connect ms', 'connectMs'), col('RSS before MiB', 'rssBeforeMiB'),
  col('RSS after MiB', 'rssAfterMiB'), col('KiB/conn', 'rssPerConnectionKiB'), col('lg CPU%', 'loadgenCpuPct'), col('steal%', 'stealPct')
]

const COLUMNS: Record<WorkloadName, Column[]> = {
  fanout: DELIVERY_COLUMNS,
  saturation: DELIVERY_COLUMNS,
  latency: DELIVERY_COLUMNS,
  overload: [
    col('deliveries/s', 'deliveriesPerSec'), col('crit p50 unloaded', 'criticalMs.unloaded.p50'), col('crit p99 unloaded', 'criticalMs.unloaded.p99'),
    col('crit p50 loaded', 'criticalMs.loaded.p50'), col('crit p99 loaded', 'criticalMs.loaded.p99'), col('all p99 loaded', 'latencyMs.p99'),
    col('lost normal', 'lost'), col('lost slow', 'lostSlow'), col('srv CPU%', 'serverCpuPct'), col('srv peak RSS MiB', 'serverPeakRssMiB'), col('lg CPU%', 'loadgenCpuPct')
  ],
  idle: IDLE_COLUMNS,
  'idle-rooms': IDLE_COLUMNS,
  // Its phases in workloads.ts order: a fixed rate, then as fast as possible.
  deflate: [
    ...['rate', 'max'].flatMap((phase, i) => [
      col(`${phase} deliv/s`, `phases.${i}.deliveriesPerSec`), col(`${phase} p50 ms`, `phases.${i}.latencyMs.p50`), col(`${phase} p99 ms`, `phases.${i}.latencyMs.p99`),
      col(`${phase} srv CPU%`, `phases.${i}.usage.serverCpuPct`), col(`${phase} lg CPU%`, `phases.${i}.usage.loadgenCpuPct`), col(`${phase} wire B/deliv`, `phases.${i}.wireBytesPerDelivery`)
    ]),
    col('lost', 'lost'), col('undeliv.', 'undelivered'), col('dups', 'duplicates'), col('reordered', 'reordered')
  ],
  tasks: TASK_NAMES.flatMap(task => [
    col(`${task} p50 ms`, `tasks.${task}.latencyMs.p50`), col(`${task} p99 ms`, `tasks.${task}.latencyMs.p99`), col(`${task} rt/s`, `tasks.${task}.roundTripsPerSec`)
  ])
}

type Medians = Map<WorkloadName, Map<Contender, Record<string, number>>>

function mediansOf (lines: Line[]): Medians {
  const medians: Medians = new Map()
  for (const name of workloadNames) {
    const byServer = new Map<Contender, Record<string, number>>()
    const workload = workloads.get(name) as Workload
    for (const contender of contendersFor(workload)) {
      const runs = lines.filter(l => l.workload === name && l.server === contender && l.ok)
      if (runs.length === 0) continue
      byServer.set(contender, Object.fromEntries(COLUMNS[name].map(([label, read]) => [label, median(runs.map(read).filter((v): v is number => v !== undefined))])))
    }
    medians.set(name, byServer)
  }
  return medians
}

function formatTable (medians: Medians): string {
  const out: string[] = []
  for (const [name, byServer] of medians) {
    if (byServer.size === 0) continue
    const labels = COLUMNS[name].map(([label]) => label)
    const rows = [['server', ...labels], ...[...byServer].map(([server, values]) => [server, ...labels.map(l => formatNumber(values[l] as number))])]
    // A Switchboard variant (with deflate, at the previous revision) against Switchboard, column by column.
    const base = byServer.get('switchboard')
    for (const [server, values] of byServer) {
      if (base === undefined || !server.startsWith('switchboard-')) continue
      rows.push([`${server} ÷ switchboard`, ...labels.map(l => formatRatio((values[l] as number) / (base[l] as number)))])
    }
    const widths = labels.map((_, i) => Math.max(...rows.map(r => (r[i + 1] as string).length)))
    const first = Math.max(...rows.map(r => (r[0] as string).length))
    out.push(`\n${name} (medians of ${repeats})`)
    for (const row of rows) out.push([(row[0] as string).padEnd(first), ...row.slice(1).map((cell, i) => cell.padStart(widths[i] as number))].join('  '))
  }
  return out.join('\n')
}

function formatRatio (value: number): string {
  return Number.isFinite(value) ? `${round(value, 2)}×` : 'n/a'
}

function formatNumber (value: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US')
  return String(round(value, 2))
}

interface TargetCheck {
  target: string
  measured: string
  met: boolean | null
}

function checkTargets (medians: Medians): TargetCheck[] {
  const value = (workload: WorkloadName, server: Contender, label: string): number => medians.get(workload)?.get(server)?.[label] ?? NaN
  const checks: TargetCheck[] = []
  const add = (target: string, measured: string, met: boolean, inputs: number[]): void => {
    checks.push({ target, measured, met: inputs.every(Number.isFinite) ? met : null })
  }
  const ratio = (a: number, b: number): string => `${round(a / b, 2)}×`
  if (workloads.has('saturation')) {
    const sb = value('saturation', 'switchboard', 'deliveries/s')
    const ws = value('saturation', 'ws', 'deliveries/s')
    const sio = value('saturation', 'socketio', 'deliveries/s')
    add('saturation: deliveries/s ≥ 3× bare ws', `${ratio(sb, ws)} (${formatNumber(sb)} vs ${formatNumber(ws)})`, sb >= 3 * ws, [sb, ws])
    add('saturation: deliveries/s ≥ 4× Socket.IO', `${ratio(sb, sio)} (${formatNumber(sb)} vs ${formatNumber(sio)})`, sb >= 4 * sio, [sb, sio])
  }
  // Against Bun's native pub/sub: server CPU per delivery (Bun delivers more per core than the load
  // generator can read, so rates alone would compare the load generator).
  for (const [name, limit] of [['saturation', 1.5], ['fanout', 1.2]] as const) {
    if (!workloads.has(name)) continue
    const sb = value(name, 'switchboard', 'srv µs/deliv')
    const bun = value(name, 'bun', 'srv µs/deliv')
    // The least a Node server pays per delivery here: when it exceeds the bound, no Node server meets it.
    const nodeFloor = value(name, 'node-floor', 'srv µs/deliv')
    const floor = Number.isFinite(nodeFloor) ? `; Node floor ${formatNumber(nodeFloor)} µs (${ratio(nodeFloor, bun)} Bun${nodeFloor > limit * bun ? ', above the bound' : ''}), Switchboard/floor ${ratio(sb, nodeFloor)}` : ''
    add(`${name}: server CPU per delivery within ${limit}× of Bun`, `${formatNumber(sb)} µs vs ${formatNumber(bun)} µs (${ratio(sb, bun)})${floor}`, sb <= limit * bun, [sb, bun])
  }
  for (const name of ['fanout', 'saturation'] as const) {
    if (!workloads.has(name)) continue
    const on = value(name, 'switchboard', 'deliveries/s')
    const off = value(name, 'switchboard-nohistory', 'deliveries/s')
    add(`${name}: deliveries/s with history on within 10 % of history off`, `${formatNumber(on)} vs ${formatNumber(off)} (${ratio(on, off)})`, on >= 0.9 * off, [on, off])
  }
  if (workloads.has('latency')) {
    const sb = value('latency', 'switchboard', 'p50 ms')
    const bun = value('latency', 'bun', 'p50 ms')
    add('latency: p50 within 1.3× of Bun', `${formatNumber(sb)} ms vs ${formatNumber(bun)} ms (${ratio(sb, bun)})`, sb <= 1.3 * bun, [sb, bun])
  }
  if (workloads.has('fanout')) {
    const rate = value('fanout', 'switchboard', 'deliveries/s')
    const p99 = value('fanout', 'switchboard', 'p99 ms')
    const floor = sweep === undefined ? '' : `; floor here: one write to each of ${sweep.connections} sockets takes ${sweep.medianMs} ms`
    add('fan-out: ≥ 190k deliveries/s with p99 < 25 ms', `${formatNumber(rate)}/s, p99 ${formatNumber(p99)} ms${floor}`, rate >= 190_000 && p99 < 25, [rate, p99])
    if (sweep !== undefined) {
      const bound = sweep.medianMs <= 8 ? Math.min(2 * sweep.medianMs, 25) : 2 * sweep.medianMs
      add('fan-out: p99 ≤ 2× the sweep floor (and ≤ 25 ms while the floor is ≤ 8 ms)', `p99 ${formatNumber(p99)} ms, floor ${sweep.medianMs} ms (${ratio(p99, sweep.medianMs)})`, p99 <= bound, [p99, sweep.medianMs])
    }
  }
  if (workloads.has('latency')) {
    for (const p of ['p50', 'p99']) {
      const sb = value('latency', 'switchboard', `${p} ms`)
      const ws = value('latency', 'ws', `${p} ms`)
      add(`latency: ${p} no worse than bare ws`, `${formatNumber(sb)} ms vs ${formatNumber(ws)} ms (${ratio(sb, ws)})`, sb <= ws, [sb, ws])
    }
  }
  for (const [name, shape] of [['idle', ''], ['idle-rooms', ', each joined to one of 100 rooms']] as const) {
    if (!workloads.has(name)) continue
    const sb = value(name, 'switchboard', 'KiB/conn')
    const fastify = value(name, 'fastify', 'KiB/conn')
    add(`${name}: RSS per connection${shape} ≤ bare Fastify + @fastify/websocket`, `${formatNumber(sb)} KiB vs ${formatNumber(fastify)} KiB (${ratio(sb, fastify)})`, sb <= fastify, [sb, fastify])
  }
  if (workloads.has('overload')) {
    const loaded = value('overload', 'switchboard', 'crit p99 loaded')
    const unloaded = value('overload', 'switchboard', 'crit p99 unloaded')
    add('overload: critical p99 within 2× of unloaded', `${formatNumber(loaded)} ms vs ${formatNumber(unloaded)} ms (${ratio(loaded, unloaded)})`, loaded <= 2 * unloaded, [loaded, unloaded])
    const lost = value('overload', 'switchboard', 'lost normal')
    add('overload: no loss for normal readers', `${formatNumber(lost)} lost (median)`, lost === 0, [lost])
  }
  if (workloads.has('tasks')) {
    const echo = value('tasks', 'tcp-echo', 'echo p50 ms')
    for (const task of TASK_NAMES) {
      const sb = value('tasks', 'switchboard', `${task} p50 ms`)
      const direct = value('tasks', 'piscina', `${task} p50 ms`)
      // The bare ws server hands the task straight to piscina: the least a WebSocket server adds.
      const ws = value('tasks', 'ws', `${task} p50 ms`)
      add(`tasks: ${task} WebSocket p50 ≤ 1.05× bare ws + piscina`, `${formatNumber(sb)} ms vs ${formatNumber(ws)} ms (${ratio(sb, ws)})`, sb <= 1.05 * ws, [sb, ws])
      // A sequential task round trip is a socket round trip with a worker hand-off inside it, so the two
      // floors add up.
      const both = echo + direct
      add(`tasks: ${task} WebSocket p50 ≤ 1.3× TCP echo + direct piscina`, `${formatNumber(sb)} ms vs ${formatNumber(echo)} + ${formatNumber(direct)} = ${formatNumber(both)} ms (${ratio(sb, both)})`, sb <= 1.3 * both, [sb, echo, direct])
    }
  }
  return checks
}

function gitRevision (): string {
  const git = (...args: string[]): string => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? ''
  const commit = git('rev-parse', '--short', 'HEAD')
  if (commit === '') return 'unknown'
  return git('status', '--porcelain', '--untracked-files=no') === '' ? commit : `${commit} with uncommitted changes`
}

function machine (): Record<string, unknown> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  return {
    revision: gitRevision(),
    cores,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    node: process.version,
    loadavg: loadavg().map(v => round(v, 2)),
    pinned: pinned ? 'server on CPU 0, load generator on CPU 1' : 'unpinned',
    openFiles: openFileLimit().soft,
    client: sizing.client,
    payloadBytes: sizing.payloadBytes ?? 100
  }
}

const started = Date.now()
const startInfo = machine()
const lines: Line[] = []

// The fan-out's floor on this machine, measured in the same run: no server can write to every member
// faster than a plain Node process writes one frame-sized buffer to each of as many sockets.
let sweep: SweepResult | undefined
const fanout = workloads.get('fanout')
if (fanout?.kind === 'deliveries') {
  sweep = await measureSweep({ connections: fanout.spec.clients, sweeps: smoke ? 5 : 40, gapMs: 5, bytes: 200 }, pinned ? 0 : undefined)
  console.log(JSON.stringify({ sweep }))
}
for (const name of workloadNames) {
  const workload = workloads.get(name) as Workload
  for (let repeat = 1; repeat <= repeats; repeat++) {
    for (const contender of contendersFor(workload)) {
      const line = await runOne(name, workload, contender, repeat)
      lines.push(line)
      console.log(JSON.stringify(line))
      if (!line.ok) console.error(`error: ${name}/${contender}#${repeat}: ${String(line.error)}`)
      else if (line.problems.length > 0) console.error(`warning: ${name}/${contender}#${repeat}: ${line.problems.join('; ')}`)
    }
  }
}

const medians = mediansOf(lines)
const targets = smoke ? [] : checkTargets(medians)
const bottlenecked = lines.filter(l => l.loadgenBottleneck === true).map(l => `${l.workload}/${l.server}#${l.repeat} (${String(l.loadgenCpuPct)}%)`)
console.log(formatTable(medians))
if (smoke) {
  console.log('\nTargets are not evaluated at smoke sizes.')
} else {
  console.log('\nTargets (Switchboard, medians)')
  for (const check of targets) console.log(`  [${check.met === null ? 'n/a' : check.met ? 'met' : 'NOT MET'}] ${check.target}: ${check.measured}`)
}
console.log(bottlenecked.length === 0
  ? `\nLoad generator below ${LOADGEN_BOTTLENECK_PCT}% of its core in every run.`
  : `\nLoad generator at ≥ ${LOADGEN_BOTTLENECK_PCT}% of its core (it may be the bottleneck) in: ${bottlenecked.join(', ')}`)
const elapsedSeconds = round((Date.now() - started) / 1000)
console.log(`Finished in ${elapsedSeconds} s.`)

const resultsDir = join(ROOT, 'bench', 'results')
mkdirSync(resultsDir, { recursive: true })
writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify({
  date: new Date(started).toISOString(),
  elapsedSeconds,
  machine: startInfo,
  options: { workloads: workloadNames, servers: serverNames, repeats, durationSeconds: durationMs / 1000, warmupSeconds: Object.fromEntries(workloadNames.map(name => [name, warmupFor(name, sizing) / 1000])), smoke, profile: flags.profile ?? null, prev: flags.prev ?? null },
  runs: lines,
  medians: Object.fromEntries([...medians].map(([name, byServer]) => [name, Object.fromEntries(byServer)])),
  targets,
  sweep: sweep ?? null,
  loadgenBottleneck: bottlenecked
}, null, 2) + '\n')

const failed = lines.filter(l => !l.ok)
const lossy = smoke ? lines.filter(l => l.problems.length > 0) : []
if (failed.length > 0 || lossy.length > 0) {
  console.error(`${failed.length} run(s) failed${smoke ? `, ${lossy.length} run(s) had problems` : ''}`)
  process.exit(1)
}
