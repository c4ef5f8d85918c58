import { readFileSync } from 'node:fs'
import * as hdr from 'hdr-histogram-js'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { cpuPercent, sampleProcess, type ProcSample } from './server-process.js'

/** Latency in microseconds, from 1 µs to 10 minutes at three significant digits. */
export function latencyHistogram (): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false })
}

/**
 * Latencies in microseconds kept as raw samples and put into an HDR histogram only when the phase is
 * over: hdr-histogram-js (in JavaScript) takes a Math.log2 and a Math.pow per recordValue, which was
 * 5 % of the load generator's core at 200k deliveries/s; storing a sample is one typed-array write.
 */
export class LatencySamples {
  private samples = new Uint32Array(1 << 16)
  private count = 0

  record (micros: number): void {
    if (this.count === this.samples.length) {
      const grown = new Uint32Array(this.samples.length * 2)
      grown.set(this.samples)
      this.samples = grown
    }
    this.samples[this.count++] = micros < 1 ? 1 : micros
  }

  toHistogram (): hdr.Histogram {
    const histogram = latencyHistogram()
    for (let i = 0; i < this.count; i++) histogram.recordValue(this.samples[i] as number)
    return histogram
  }
}

export interface LatencySummary {
  count: number
  p50: number
  p90: number
  p99: number
  max: number
}

const ms = (micros: number): number => Math.round(micros) / 1000

/** Percentiles in milliseconds. */
export function summarize (histogram: hdr.Histogram): LatencySummary {
  if (histogram.totalCount === 0) return { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN }
  return {
    count: histogram.totalCount,
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    max: ms(histogram.maxValue)
  }
}

export function median (values: number[]): number {
  const sorted = values.filter(v => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

export const round = (value: number, digits = 1): number => {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

export const mib = (bytes: number): number => round(bytes / 1024 / 1024, 1)

/** What both processes did during a measurement window. */
export interface WindowUsage {
  seconds: number
  serverCpuPct: number
  serverRssMiB: number
  serverPeakRssMiB: number
  loadgenCpuPct: number
  /** The load generator's event loop delay: high values mean its timestamps lag. */
  loadgenLoopDelayP99Ms: number
  loadgenLoopDelayMaxMs: number
  /** The "server" was this process (direct piscina), so server and load generator figures coincide. */
  sameProcess: boolean
  /** Share of the machine's CPU time the hypervisor gave to others (steal), over the window. */
  stealPct: number
}

/** The machine's total and steal CPU ticks from /proc/stat. */
function cpuTicks (): { total: number, steal: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number)
  return { total: fields.reduce((sum, value) => sum + value, 0), steal: fields[7] ?? 0 }
}

const LOOP_RESOLUTION_MS = 10

/** The histogram holds whole intervals between its timer's runs; the delay is what exceeds the interval. */
const loopDelayMs = (nanoseconds: number): number => round(Math.max(0, nanoseconds / 1e6 - LOOP_RESOLUTION_MS), 2)

/** Starts measuring the server (through /proc) and this process (the load generator). */
export function startWindow (serverPid: number): () => WindowUsage {
  const server: ProcSample = sampleProcess(serverPid)
  const ticks = cpuTicks()
  const cpu = process.cpuUsage()
  const loop: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
  loop.enable()
  return () => {
    const end = sampleProcess(serverPid)
    const endTicks = cpuTicks()
    const used = process.cpuUsage(cpu)
    loop.disable()
    const seconds = (end.at - server.at) / 1000
    return {
      seconds: round(seconds, 2),
      serverCpuPct: round(cpuPercent(server, end)),
      serverRssMiB: mib(end.rssBytes),
      serverPeakRssMiB: mib(end.peakRssBytes),
      loadgenCpuPct: round((used.user + used.system) / 1e4 / seconds),
      loadgenLoopDelayP99Ms: loopDelayMs(loop.percentile(99)),
      loadgenLoopDelayMaxMs: loopDelayMs(loop.max),
      sameProcess: serverPid === process.pid,
      stealPct: round(100 * (endTicks.steal - ticks.steal) / Math.max(1, endTicks.total - ticks.total))
    }
  }
}

/** Above this share of its core the load generator, not the server, may be what limits a run. */
export const LOADGEN_BOTTLENECK_PCT = 90
