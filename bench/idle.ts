import { setTimeout as sleep } from 'node:timers/promises'
import { connectAll, type Target } from './loadgen.js'
import { BenchPeer, type ClientKind } from './peer.js'
import { sampleProcess } from './server-process.js'
import { latencyHistogram, mib, round, startWindow, summarize, type LatencySummary, type WindowUsage } from './stats.js'

export interface IdleWorkload {
  connections: number
  connectConcurrency: number
  /** Each connection joins one of this many rooms once connected (0: none), the shape most users have. */
  rooms: number
  client: ClientKind
  /** Longest wait for the server's RSS to stop moving, before and after connecting. */
  settleMaxMs: number
}

export interface IdleResult {
  connections: number
  rooms: number
  connectMs: number
  connectLatencyMs: LatencySummary
  rssBeforeMiB: number
  rssAfterMiB: number
  rssPerConnectionKiB: number
  /** Whether RSS had stopped moving (within 0.5 % over a second) when it was read. */
  settled: boolean
  /** Connections the server closed while they sat idle. */
  closedByServer: number
  /** Server and load generator while connecting. */
  usage: WindowUsage
}

const SAMPLE_MS = 200
const STABLE_SAMPLES = 5

/** Waits until the server's RSS varies by less than 0.5 % over a second, or `maxMs` passes. */
export async function settledRss (pid: number, maxMs: number): Promise<{ rss: number, settled: boolean }> {
  const started = performance.now()
  const recent: number[] = []
  for (;;) {
    recent.push(sampleProcess(pid).rssBytes)
    if (recent.length > STABLE_SAMPLES) recent.shift()
    const low = Math.min(...recent)
    const high = Math.max(...recent)
    const last = recent[recent.length - 1] as number
    if (recent.length === STABLE_SAMPLES && high - low <= 0.005 * high) return { rss: last, settled: true }
    if (performance.now() - started > maxMs) return { rss: last, settled: false }
    await sleep(SAMPLE_MS)
  }
}

/**
 * RSS growth per idle connection: a few connections are opened and closed first so that the code paths
 * of an upgrade are loaded before the baseline reading; the connections then only answer pings.
 */
export async function runIdle (target: Target, workload: IdleWorkload): Promise<IdleResult> {
  const ignore = (): void => {}
  /** Connects, then joins `prefix-<index % rooms>` when the workload has rooms. */
  const open = async (prefix: string, index: number): Promise<BenchPeer> => {
    const peer = await BenchPeer.connect(target.dialect, target.host, target.port, ignore, workload.client)
    if (workload.rooms > 0) await peer.join(`${prefix}-${index % workload.rooms}`)
    return peer
  }
  // The warm-up joins (and leaves, by closing) rooms of its own, so the measured joins still create theirs.
  const warm = await connectAll(20, 20, index => open('warm', index), latencyHistogram())
  for (const peer of warm) peer.destroy()
  const before = await settledRss(target.pid, workload.settleMaxMs)

  const histogram = latencyHistogram()
  const stopWindow = startWindow(target.pid)
  const started = performance.now()
  const peers = await connectAll(workload.connections, workload.connectConcurrency, index => open('idle', index), histogram)
  const connectMs = round(performance.now() - started)
  const usage = stopWindow()
  let closedByServer = 0
  let finished = false
  for (const peer of peers) void peer.closed.then(() => { if (!finished) closedByServer++ })

  const after = await settledRss(target.pid, workload.settleMaxMs)
  finished = true
  for (const peer of peers) peer.destroy()
  return {
    connections: workload.connections,
    rooms: workload.rooms,
    connectMs,
    connectLatencyMs: summarize(histogram),
    rssBeforeMiB: mib(before.rss),
    rssAfterMiB: mib(after.rss),
    rssPerConnectionKiB: round((after.rss - before.rss) / 1024 / workload.connections, 2),
    settled: before.settled && after.settled,
    closedByServer,
    usage
  }
}
