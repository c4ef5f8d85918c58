import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Piscina } from 'piscina'
import { nextMessage, spawnHelper } from './child.js'
import type { Target } from './loadgen.js'
import { BenchPeer } from './peer.js'
import { latencyHistogram, startWindow, summarize, type LatencySummary, type WindowUsage } from './stats.js'

export const TASK_NAMES = ['echo', 'sha256'] as const

export interface TaskWorkload {
  /** Measured time per task name; round trips are sequential, one in flight. */
  durationMs: number
  warmupMs: number
  payloadBytes: number
}

export interface TaskNameResult {
  roundTripsPerSec: number
  latencyMs: LatencySummary
  /** Answers that were errors or did not match what the task should return. */
  failures: number
}

export interface TaskResult {
  byTask: Record<string, TaskNameResult>
  /** Server (or, for direct piscina, this process) and load generator during the last measurement. */
  usage: WindowUsage | undefined
}

type RunTask = (name: string) => Promise<unknown>

function payload (bytes: number): { json: string, value: { pad: string } } {
  const value = { pad: 'x'.repeat(Math.max(0, bytes - '{"pad":""}'.length)) }
  return { json: JSON.stringify(value), value }
}

function answerIsRight (name: string, answer: unknown, sent: { pad: string }): boolean {
  if (name === 'echo') return (answer as { pad?: unknown } | null)?.pad === sent.pad
  return typeof answer === 'string' && /^[0-9a-f]{64}$/.test(answer)
}

async function measure (run: RunTask, name: string, sent: { pad: string }, workload: TaskWorkload, pid: number): Promise<{ result: TaskNameResult, usage: WindowUsage }> {
  const warmUntil = performance.now() + workload.warmupMs
  while (performance.now() < warmUntil) await run(name)
  const histogram = latencyHistogram()
  let failures = 0
  const stopWindow = startWindow(pid)
  const started = performance.now()
  const until = started + workload.durationMs
  let count = 0
  while (performance.now() < until) {
    const t0 = performance.now()
    let answer: unknown
    try {
      answer = await run(name)
    } catch {
      failures++
      continue
    }
    histogram.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)))
    if (!answerIsRight(name, answer, sent)) failures++
    count++
  }
  const seconds = (performance.now() - started) / 1000
  return { result: { roundTripsPerSec: Math.round(count / seconds), latencyMs: summarize(histogram), failures }, usage: stopWindow() }
}

/** Sequential `task` round trips over one WebSocket connection to Switchboard. */
export async function runTasksOverWebSocket (target: Target, workload: TaskWorkload): Promise<TaskResult> {
  const peer = await BenchPeer.connect(target.dialect, target.host, target.port, () => {})
  const { json, value } = payload(workload.payloadBytes)
  const byTask: Record<string, TaskNameResult> = {}
  let usage: WindowUsage | undefined
  try {
    for (const name of TASK_NAMES) {
      const measured = await measure(task => peer.task(task, json), name, value, workload, target.pid)
      byTask[name] = measured.result
      usage = measured.usage
    }
  } finally {
    peer.destroy()
  }
  return { byTask, usage }
}

/**
 * Sequential `task` round trips to two servers at once, taking turns: one round trip to the first, one
 * to the second, and so on, so that both see the same minute of this machine and never load it
 * together. Each round trip is timed alone, as in runTasksOverWebSocket.
 */
export async function runTasksAlternating (targets: readonly [Target, Target], workload: TaskWorkload): Promise<[TaskResult, TaskResult]> {
  const peers = await Promise.all(targets.map(target => BenchPeer.connect(target.dialect, target.host, target.port, () => {})))
  const { json, value } = payload(workload.payloadBytes)
  const results: [TaskResult, TaskResult] = [{ byTask: {}, usage: undefined }, { byTask: {}, usage: undefined }]
  try {
    for (const name of TASK_NAMES) {
      const warmUntil = performance.now() + workload.warmupMs
      while (performance.now() < warmUntil) {
        for (const peer of peers) await peer.task(name, json)
      }
      const histograms = peers.map(() => latencyHistogram())
      const failures = peers.map(() => 0)
      const counts = peers.map(() => 0)
      const stopWindows = targets.map(target => startWindow(target.pid))
      const started = performance.now()
      const until = started + workload.durationMs
      for (let turn = 0; performance.now() < until; turn++) {
        // Which one goes first alternates too: the second of two may find the first's warm caches.
        for (let k = 0; k < 2; k++) {
          const i = (turn + k) % 2
          const t0 = performance.now()
          let answer: unknown
          try {
            answer = await (peers[i] as BenchPeer).task(name, json)
          } catch {
            failures[i]!++
            continue
          }
          histograms[i]!.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)))
          if (!answerIsRight(name, answer, value)) failures[i]!++
          counts[i]!++
        }
      }
      const seconds = (performance.now() - started) / 1000
      for (let i = 0; i < 2; i++) {
        const result = results[i] as TaskResult
        result.byTask[name] = { roundTripsPerSec: Math.round((counts[i] as number) / seconds), latencyMs: summarize(histograms[i]!), failures: failures[i] as number }
        result.usage = (stopWindows[i] as () => WindowUsage)()
      }
    }
  } finally {
    for (const peer of peers) peer.destroy()
  }
  return results
}

/**
 * The same round trips straight into a one-thread piscina pool on lib/task-worker.js, from this process,
 * with the request shape and pool options that lib/task-runner.ts uses (no abort signal: that is the
 * server's bookkeeping, part of what is being compared).
 */
export async function runTasksDirect (workload: TaskWorkload): Promise<TaskResult> {
  const pool = new Piscina({
    filename: new URL('../lib/tasks/worker.js', import.meta.url).href,
    minThreads: 1,
    maxThreads: 1,
    atomics: 'disabled',
    workerData: { tasksModule: undefined }
  })
  const { value } = payload(workload.payloadBytes)
  const byTask: Record<string, TaskNameResult> = {}
  let usage: WindowUsage | undefined
  const run: RunTask = async name => {
    const reply = await pool.run({ name, data: value, attempt: 1, deadline: Date.now() + 10_000 }) as { ok: boolean, value?: unknown, message?: string }
    if (!reply.ok) throw new Error(reply.message)
    return reply.value
  }
  try {
    // piscina starts its thread lazily; the first task would otherwise pay for the boot.
    await run('echo')
    await sleep(50)
    for (const name of TASK_NAMES) {
      const measured = await measure(run, name, value, workload, process.pid)
      byTask[name] = measured.result
      usage = measured.usage
    }
  } finally {
    await pool.destroy()
  }
  return { byTask, usage }
}

/**
 * The network's share of a task round trip: the same payload echoed by a plain TCP server on the server's
 * core, sequentially, one in flight. No WebSocket task round trip can be faster than this.
 */
export async function runTcpEcho (workload: TaskWorkload, cpu: number | undefined): Promise<TaskResult> {
  const child = spawnHelper('bench/echo-server.ts', cpu)
  try {
    const port = await nextMessage(child, m => m.port as number | undefined)
    const socket = connect({ host: '127.0.0.1', port, noDelay: true })
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    const { json, value } = payload(workload.payloadBytes)
    const request = Buffer.from(json)
    let received = 0
    let answered: (() => void) | undefined
    socket.on('data', chunk => {
      received += chunk.length
      if (received >= request.length && answered !== undefined) {
        received -= request.length
        const done = answered
        answered = undefined
        done()
      }
    })
    const run: RunTask = async () => {
      await new Promise<void>(resolve => {
        answered = resolve
        socket.write(request)
      })
      return value
    }
    try {
      const measured = await measure(run, 'echo', value, workload, child.pid as number)
      return { byTask: { echo: measured.result }, usage: measured.usage }
    } finally {
      socket.destroy()
    }
  } finally {
    if (child.connected) child.disconnect()
  }
}
