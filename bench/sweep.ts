import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { nextMessage, spawnHelper } from './child.js'
import { median, round } from './stats.js'

export interface SweepSpec {
  connections: number
  sweeps: number
  /** Pause between sweeps, as between two publishes of the fan-out workload. */
  gapMs: number
  /** About the size of one fan-out delivery frame. */
  bytes: number
}

export interface SweepResult {
  connections: number
  bytes: number
  medianMs: number
  p90Ms: number
  /** Median cost of one write, in microseconds. */
  perWriteUs: number
}

// One buffer for every connection's reads: the bytes are discarded.
const sink = Buffer.allocUnsafe(64 * 1024)

/**
 * How long one small write to each of N loopback TCP connections takes on this machine, from a plain Node
 * process on the server's core while this process reads on the other: the least time a fan-out to N
 * sockets can take here, whatever the server, and so a floor under the fan-out workload's latency.
 */
export async function measureSweep (spec: SweepSpec, cpu: number | undefined): Promise<SweepResult> {
  const child = spawnHelper('bench/sweep-writer.ts', cpu)
  const sockets: Socket[] = []
  try {
    const port = await nextMessage(child, m => m.port as number | undefined)
    for (let i = 0; i < spec.connections; i++) {
      const socket = connect({ host: '127.0.0.1', port, noDelay: true, onread: { buffer: sink, callback: () => true } })
      sockets.push(socket)
      await new Promise((resolve, reject) => {
        socket.once('connect', resolve)
        socket.once('error', reject)
      })
      // The writer may reset connections when it exits; that ends the measurement, not the harness.
      socket.on('error', () => {})
    }
    for (;;) {
      child.send('count')
      if (await nextMessage(child, m => m.connections as number | undefined) >= spec.connections) break
      await sleep(20)
    }
    child.send({ sweeps: spec.sweeps, gapMs: spec.gapMs, bytes: spec.bytes })
    const durations = (await nextMessage(child, m => m.durations as number[] | undefined)).sort((a, b) => a - b)
    const medianMs = median(durations)
    return {
      connections: spec.connections,
      bytes: spec.bytes,
      medianMs: round(medianMs, 2),
      p90Ms: round(durations[Math.floor(durations.length * 0.9)] as number, 2),
      perWriteUs: round(1000 * medianMs / spec.connections, 1)
    }
  } finally {
    for (const socket of sockets) socket.destroy()
    if (child.connected) child.disconnect()
  }
}
