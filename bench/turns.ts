import { setTimeout as sleep } from 'node:timers/promises'
import type { Target } from './loadgen.js'
import { BenchPeer, benchPayload, type ClientKind } from './peer.js'
import { latencyHistogram, summarize, type LatencySummary } from './stats.js'

export interface TurnsWorkload {
  rooms: number
  /** Members per room, the publisher included. */
  members: number
  payloadBytes: number
  client: ClientKind
  warmupMs: number
  durationMs: number
  /** Idle time after each publish, so that the servers sleep between publishes as at a fixed rate; 0 for none. */
  gapMs: number
}

export interface TurnsResult {
  /** Every delivery's latency, from the publish to that member's receipt. */
  deliveryMs: LatencySummary
  /** From the publish to the last member's receipt. */
  lastMs: LatencySummary
  publishes: number
  /** Deliveries that did not arrive within a second (none on a healthy server). */
  missing: number
}

const PRIORITY = 2
const DELIVERY_TIMEOUT_MS = 1000

/** One server's rooms: its peers, and the publish whose deliveries are awaited. */
class Side {
  private publishers: BenchPeer[] = []
  private peers: BenchPeer[] = []
  private awaited = 0
  private sentUs = 0
  private current = -1
  private done: (() => void) | undefined
  private recording = false
  readonly deliveries = latencyHistogram()
  readonly last = latencyHistogram()
  publishes = 0
  missing = 0

  constructor (private readonly target: Target, private readonly workload: TurnsWorkload) {}

  async connect (): Promise<void> {
    const { rooms, members, client } = this.workload
    for (let r = 0; r < rooms; r++) {
      for (let m = 0; m < members; m++) {
        const peer = await BenchPeer.connect(this.target.dialect, this.target.host, this.target.port, (_priority, _publisher, n, sentUs, receivedAt) => {
          this.received(n, sentUs, receivedAt)
        }, client)
        await peer.join(`turns-${r}`)
        this.peers.push(peer)
        if (m === 0) this.publishers.push(peer)
      }
    }
  }

  /** Publishes message `n` to one room and resolves once every member got it (or a second passed). */
  publish (n: number, record: boolean): Promise<void> {
    const { rooms, members, payloadBytes } = this.workload
    const room = n % rooms
    this.current = n
    this.awaited = members
    this.recording = record
    this.sentUs = Math.round(performance.now() * 1000)
    return new Promise(resolve => {
      const timer = setTimeout(() => {
        this.missing += this.awaited
        this.awaited = 0
        resolve()
      }, DELIVERY_TIMEOUT_MS)
      this.done = () => {
        clearTimeout(timer)
        resolve()
      }
      ;(this.publishers[room] as BenchPeer).publish(`turns-${room}`, benchPayload(PRIORITY, room, n, this.sentUs, payloadBytes), PRIORITY)
    })
  }

  result (): TurnsResult {
    return { deliveryMs: summarize(this.deliveries), lastMs: summarize(this.last), publishes: this.publishes, missing: this.missing }
  }

  close (): void {
    for (const peer of this.peers) peer.destroy()
  }

  private received (n: number, sentUs: number, receivedAt: number): void {
    if (n !== this.current || this.awaited === 0) return
    const us = Math.max(1, Math.round(receivedAt * 1000 - sentUs))
    if (this.recording) this.deliveries.recordValue(us)
    if (--this.awaited > 0) return
    if (this.recording) {
      this.last.recordValue(us)
      this.publishes++
    }
    this.done?.()
  }
}

/**
 * Publishes to two servers taking turns, one publish in flight in all: one to a room of the first server,
 * then one to a room of the second, each awaited until every member has it. Both see the same minute of
 * the machine and never load it together, so the ratio of their latencies is the ratio of what one
 * publish costs on its way from the publisher to the members, with nothing queued in front of it.
 */
/** `onMeasure` runs once, when the warm-up ends and the measured turns begin. */
export async function runPublishTurns (targets: readonly [Target, Target], workload: TurnsWorkload, onMeasure?: () => void): Promise<[TurnsResult, TurnsResult]> {
  const sides = targets.map(target => new Side(target, workload)) as [Side, Side]
  try {
    for (const side of sides) await side.connect()
    const warmUntil = performance.now() + workload.warmupMs
    let n = 0
    for (; performance.now() < warmUntil; n++) {
      for (const side of sides) {
        await side.publish(n, false)
        if (workload.gapMs > 0) await sleep(workload.gapMs)
      }
    }
    onMeasure?.()
    const until = performance.now() + workload.durationMs
    for (let turn = 0; performance.now() < until; turn++, n++) {
      // Which one goes first alternates too: the second may find caches the first left warm.
      for (let k = 0; k < 2; k++) {
        await (sides[(turn + k) % 2] as Side).publish(n, true)
        if (workload.gapMs > 0) await sleep(workload.gapMs)
      }
    }
    return [sides[0].result(), sides[1].result()]
  } finally {
    for (const side of sides) side.close()
  }
}
