import type { IdleWorkload } from './idle.js'
import type { DeliveryWorkload, PhaseSpec } from './loadgen.js'
import type { ClientKind } from './peer.js'
import type { ServerName } from './server-process.js'
import type { TaskWorkload } from './tasks.js'

export const WORKLOAD_NAMES = ['fanout', 'saturation', 'latency', 'idle', 'idle-rooms', 'overload', 'tasks', 'deflate'] as const
export type WorkloadName = (typeof WORKLOAD_NAMES)[number]
/** The workloads, which a run without --workload measures. */
export const DEFAULT_WORKLOADS: WorkloadName[] = ['fanout', 'saturation', 'latency', 'idle', 'idle-rooms', 'overload', 'tasks']

export type Workload =
  /** `servers`: what the workload compares, instead of the servers the run was given. */
  | { kind: 'deliveries', spec: DeliveryWorkload, servers?: ServerName[] }
  | { kind: 'idle', spec: IdleWorkload }
  | { kind: 'tasks', spec: TaskWorkload }

/** Traffic before each measured phase, so that the servers' code is compiled and their heaps settled. */
export const WARMUP_MS = 3000
/**
 * The same for the light workloads (latency, and paired.ts's turns): at about a thousand publishes a
 * second V8 optimizes the per-op functions only 4–7 s after the server started, and re-optimizes the
 * history's append about 4 s after each room's ring first wrapped (BENCHMARKS.md, twelfth part).
 */
export const LIGHT_LOAD_WARMUP_MS = 20_000
const SMOKE_WARMUP_MS = 200

/** `warmupMs` when given, else the workload's own: longer for the light workloads. */
export function warmupFor (name: WorkloadName | 'turns', sizing: { smoke: boolean, warmupMs?: number | undefined }): number {
  if (sizing.warmupMs !== undefined) return sizing.warmupMs
  if (sizing.smoke) return SMOKE_WARMUP_MS
  return name === 'latency' || name === 'turns' ? LIGHT_LOAD_WARMUP_MS : WARMUP_MS
}

export interface Sizing {
  smoke: boolean
  /** Overrides every workload's warm-up (see warmupFor). */
  warmupMs?: number | undefined
  durationMs: number
  /** The client of every workload that does not need a particular one (deflate needs ws). */
  client: ClientKind
  /** Payload of fanout and saturation (100 bytes unless given); the other workloads keep theirs. */
  payloadBytes?: number
  /** Connections of idle and idle-rooms (5000 unless given). */
  idleConnections?: number
}

const NORMAL = 2
const allNormal = (): number => NORMAL
const allCritical = (): number => 0

/** 10 % critical, 20 % high, 50 % normal, 20 % low, interleaved with period 20. */
const MIX = [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3]
const mixed = (n: number): number => MIX[(n * 7) % MIX.length] as number

function phase (name: string, warmupMs: number, sizing: Sizing, rest: Partial<PhaseSpec>): PhaseSpec {
  return {
    name,
    rate: 0,
    window: 0,
    priorityOf: allNormal,
    warmupMs,
    durationMs: sizing.durationMs,
    slowReadersPause: false,
    ...rest
  }
}

/**
 * The workloads; `smoke` shrinks each to seconds and tens of connections while keeping its
 * shape, so CI exercises every code path without timing anything.
 */
export function buildWorkload (name: WorkloadName, sizing: Sizing): Workload {
  const { smoke, client } = sizing
  const payloadBytes = 100
  const throughputPayload = sizing.payloadBytes ?? payloadBytes
  const connectConcurrency = 100
  const warmupMs = warmupFor(name, sizing)
  switch (name) {
    case 'fanout':
      // 1000 members × 200 msg/s = 200k deliveries/s offered.
      return {
        kind: 'deliveries',
        spec: {
          clients: smoke ? 50 : 1000, rooms: 1, publishers: 1, slowReaders: 0, payloadBytes: throughputPayload, client, connectConcurrency,
          phases: [phase('fanout', warmupMs, sizing, { rate: smoke ? 50 : 200 })]
        }
      }
    case 'saturation':
      return {
        kind: 'deliveries',
        spec: {
          clients: smoke ? 50 : 1000, rooms: smoke ? 5 : 10, publishers: smoke ? 5 : 10, slowReaders: 0, payloadBytes: throughputPayload, client, connectConcurrency,
          phases: [phase('saturation', warmupMs, sizing, { rate: 0, window: smoke ? 4 : 32 })]
        }
      }
    case 'latency':
      return {
        kind: 'deliveries',
        spec: {
          clients: smoke ? 20 : 100, rooms: smoke ? 2 : 10, publishers: smoke ? 2 : 10, slowReaders: 0, payloadBytes, client, connectConcurrency,
          phases: [phase('latency', warmupMs, sizing, { rate: smoke ? 100 : 1000 })]
        }
      }
    case 'overload':
      // The same critical stream twice: alone, then inside 10× the traffic of mixed priorities while a
      // few members stop reading. A paused loopback reader absorbs about 4 MB in the kernel before any
      // server has to queue (let alone shed), so the payloads are 8 KB: 200 msg/s per room then backs
      // up 1.6 MB/s per slow reader, past Switchboard's 1 MiB queue within the phase, while the
      // normal readers' 21k deliveries/s stay well inside what every server sustains.
      return {
        kind: 'deliveries',
        spec: {
          clients: smoke ? 20 : 100, rooms: 2, publishers: 2, slowReaders: smoke ? 2 : 4, payloadBytes: smoke ? 1024 : 8192, client, connectConcurrency,
          phases: [
            phase('unloaded', warmupMs, sizing, { rate: smoke ? 20 : 40, priorityOf: allCritical }),
            phase('loaded', warmupMs, sizing, { rate: smoke ? 200 : 400, priorityOf: mixed, slowReadersPause: true })
          ]
        }
      }
    case 'deflate':
      // The cost of compression: one Switchboard with and one without permessage-deflate, 200 ws-package
      // readers that offer it, 1 KB JSON records; 50 msg/s = 10k deliveries/s, then as fast as possible.
      // Not 200 msg/s: the readers' inflating (libuv's pool, one core) tops out near 20k messages/s.
      return {
        kind: 'deliveries',
        servers: ['switchboard', 'switchboard-deflate'],
        spec: {
          clients: smoke ? 20 : 200, rooms: 1, publishers: 1, slowReaders: 0, payloadBytes: 1024, payload: 'records', client: 'ws', connectConcurrency,
          phases: [phase('rate', warmupMs, sizing, { rate: 50 }), phase('max', warmupMs, sizing, { rate: 0, window: smoke ? 4 : 32 })]
        }
      }
    case 'idle':
    case 'idle-rooms':
      // idle-rooms: each connection joined to one of 100 rooms, as a second load generator measured.
      return { kind: 'idle', spec: { connections: smoke ? 100 : sizing.idleConnections ?? 5000, rooms: name === 'idle' ? 0 : 100, client, connectConcurrency, settleMaxMs: smoke ? 1000 : 8000 } }
    case 'tasks':
      return { kind: 'tasks', spec: { durationMs: sizing.durationMs / 2, warmupMs, payloadBytes } }
  }
}
