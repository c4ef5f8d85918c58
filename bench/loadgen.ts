import type { Histogram } from 'hdr-histogram-js'
import { setTimeout as sleep } from 'node:timers/promises'
import { BenchPeer, PRIORITY_NAMES, benchPayload, type ClientKind, type Dialect, type PayloadKind } from './peer.js'
import { LatencySamples, latencyHistogram, round, startWindow, summarize, type LatencySummary, type WindowUsage } from './stats.js'

export interface PhaseSpec {
  name: string
  /** Messages per second over all publishers; 0 publishes as fast as the in-flight window allows. */
  rate: number
  /** With rate 0: messages per publisher published but not yet received by every member of its room. */
  window: number
  /** Priority level (0 critical … 3 low) of a publisher's n-th message. */
  priorityOf: (n: number) => number
  warmupMs: number
  durationMs: number
  /** Whether the slow readers stop reading during this phase. */
  slowReadersPause: boolean
}

export interface DeliveryWorkload {
  /** Reading clients, publishers included (a publisher receives its own messages). */
  clients: number
  rooms: number
  publishers: number
  /** Extra members that pause their socket in the phases that say so. */
  slowReaders: number
  payloadBytes: number
  /** 'padded' unless given. */
  payload?: PayloadKind
  /** 'lean' unless given. */
  client?: ClientKind
  connectConcurrency: number
  phases: PhaseSpec[]
}

export interface Target {
  dialect: Dialect
  host: string
  port: number
  pid: number
}

export interface PhaseResult {
  name: string
  offeredPerSec: number
  publishedPerSec: number
  deliveriesPerSec: number
  /** Latency of normal readers, every priority together. */
  latencyMs: LatencySummary
  /** Normal readers' latency per priority, for phases with more than one. */
  byPriority?: Record<string, LatencySummary>
  /** The publishers' worst delay behind their schedule (fixed-rate phases). */
  sendLagMaxMs: number
  /** Windows released after no progress for STALL_MS (as-fast-as-possible phases). */
  stalls: number
  /** Bytes every client's socket read during the window (frame headers, compression and control frames included) per delivery. */
  wireBytesPerDelivery: number
  usage: WindowUsage
}

export interface DeliveryResult {
  connectMs: number
  connectLatencyMs: LatencySummary
  phases: PhaseResult[]
  /** Messages a normal reader missed although it received a later one from the same publisher. */
  lost: number
  lostByPriority: Record<string, number>
  /** The same for slow readers, who are expected to lose what the server sheds. */
  lostSlow: number
  lostSlowByPriority: Record<string, number>
  /** Messages after the last one a normal reader received: still queued somewhere when the drain ended. */
  undelivered: number
  undeliveredSlow: number
  duplicates: number
  /** Deliveries that came after a later message of the same publisher and priority. */
  reordered: number
  /** Deliveries of a message published to a room the receiver is not in. */
  misrouted: number
  /** Normal readers' connections that the server closed before the end, by close code. */
  closedByServer: Record<string, number>
  closedByServerSlow: Record<string, number>
  errorFrames: Record<string, number>
  unexpectedFrames: number
}

const STALL_MS = 2000
const QUIET_MS = 1000
const DRAIN_MAX_MS = 5000
const RING = 8192

class Bitmaps {
  private readonly maps: Uint8Array[]
  constructor (count: number, initialBits: number) {
    this.maps = Array.from({ length: count }, () => new Uint8Array((initialBits >> 3) + 1))
  }

  /** Sets bit n of map i; false when it was already set. */
  set (i: number, n: number): boolean {
    let map = this.maps[i] as Uint8Array
    const byte = n >> 3
    if (byte >= map.length) {
      const grown = new Uint8Array(Math.max(byte + 1, map.length * 2))
      grown.set(map)
      this.maps[i] = map = grown
    }
    const bit = 1 << (n & 7)
    if (((map[byte] as number) & bit) !== 0) return false
    map[byte] = (map[byte] as number) | bit
    return true
  }

  has (i: number, n: number): boolean {
    const map = this.maps[i] as Uint8Array
    const byte = n >> 3
    return byte < map.length && ((map[byte] as number) & (1 << (n & 7))) !== 0
  }
}

function emptyByPriority (): Record<string, number> {
  return Object.fromEntries(PRIORITY_NAMES.map(name => [name, 0]))
}

function sum (record: Record<string, number>): number {
  return Object.values(record).reduce((a, b) => a + b, 0)
}

/** Opens `count` connections, at most `concurrency` upgrades at a time; returns them in index order. */
export async function connectAll<T> (count: number, concurrency: number, open: (index: number) => Promise<T>, perConnection: Histogram): Promise<T[]> {
  const opened = new Array<T>(count)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++
      const started = performance.now()
      opened[index] = await open(index)
      perConnection.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)))
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return opened
}

/**
 * Connects every client, joins each to its room, then runs the phases: publishers send ids and send
 * times, every receipt is checked against a per-(receiver, publisher) bitmap for duplicates, and what
 * is missing after a drain is counted as lost or undelivered.
 */
export async function runDeliveries (target: Target, workload: DeliveryWorkload): Promise<DeliveryResult> {
  const { clients, rooms, publishers, slowReaders, payloadBytes } = workload
  const total = clients + slowReaders
  if (publishers > clients) throw new Error('publishers are clients: publishers must not exceed clients')
  const roomOf = new Int32Array(total)
  for (let c = 0; c < total; c++) roomOf[c] = (c < clients ? c : c - clients) % rooms
  const roomName = (room: number): string => `r${room}`
  const members = new Int32Array(rooms)
  const normalMembers = new Int32Array(rooms)
  for (let c = 0; c < total; c++) {
    members[roomOf[c] as number]!++
    if (c < clients) normalMembers[roomOf[c] as number]!++
  }
  const roomPublishers: number[][] = Array.from({ length: rooms }, () => [])
  const localIndex = new Int32Array(publishers)
  for (let p = 0; p < publishers; p++) {
    const list = roomPublishers[roomOf[p] as number] as number[]
    localIndex[p] = list.length
    list.push(p)
  }
  const slotBase = new Int32Array(total)
  let slots = 0
  for (let c = 0; c < total; c++) {
    slotBase[c] = slots
    slots += (roomPublishers[roomOf[c] as number] as number[]).length
  }
  const received = new Bitmaps(slots, 8192)
  // Per (receiver, publisher, priority): the highest n received. Only priorities may overtake each other.
  const lastReceived = new Int32Array(slots * PRIORITY_NAMES.length)
  const published = new Int32Array(publishers)
  const priorities = Array.from({ length: publishers }, () => new Uint8Array(8192))

  // Window mode: receipts per in-flight message, in a ring per publisher.
  const pending = new Uint16Array(publishers * RING)
  const inflight = new Int32Array(publishers)
  const abandonedUpTo = new Int32Array(publishers)
  const lastProgress = new Float64Array(publishers)

  let duplicates = 0
  let reordered = 0
  let misrouted = 0
  let normalReceived = 0
  let slowReceived = 0
  let lastReceiptAt = 0
  let measuring = false
  let windowMode = false
  let windowSize = 0
  let phaseDeliveries = 0
  let samples: LatencySamples[] = []

  const peers: BenchPeer[] = []
  const sinkFor = (c: number) => (priority: number, p: number, n: number, sentUs: number, now: number): void => {
    if (p >= publishers || roomOf[p] !== roomOf[c]) {
      misrouted++
      return
    }
    const pairSlot = (slotBase[c] as number) + (localIndex[p] as number)
    if (!received.set(pairSlot, n)) {
      duplicates++
      return
    }
    const order = pairSlot * PRIORITY_NAMES.length + priority
    if (n < (lastReceived[order] as number)) reordered++
    else lastReceived[order] = n
    lastReceiptAt = now
    const slow = c >= clients
    if (slow) slowReceived++
    else normalReceived++
    if (measuring) {
      phaseDeliveries++
      if (!slow) (samples[priority] as LatencySamples).record(Math.round(now * 1000 - sentUs))
    }
    if (windowMode && n > (abandonedUpTo[p] as number)) {
      const slot = p * RING + (n & (RING - 1))
      if (++pending[slot]! === members[roomOf[p] as number]) complete(p, now)
    }
  }

  let topUpQueued: number[] = []
  const queuedForTopUp = new Uint8Array(publishers)
  let publishing = false

  const publishOne = (p: number): void => {
    const n = ++published[p]!
    let kinds = priorities[p] as Uint8Array
    if (n >= kinds.length) {
      const grown = new Uint8Array(kinds.length * 2)
      grown.set(kinds)
      priorities[p] = kinds = grown
    }
    const priority = currentPhase.priorityOf(n)
    kinds[n] = priority
    if (windowMode) {
      pending[p * RING + (n & (RING - 1))] = 0
      inflight[p]!++
    }
    const sentUs = Math.round(performance.now() * 1000)
    ;(peers[p] as BenchPeer).publish(roomName(roomOf[p] as number), benchPayload(priority, p, n, sentUs, payloadBytes, workload.payload), priority)
  }

  const topUp = (): void => {
    const queue = topUpQueued
    topUpQueued = []
    for (const p of queue) {
      queuedForTopUp[p] = 0
      if (!publishing) continue
      const peer = peers[p] as BenchPeer
      peer.cork()
      while ((inflight[p] as number) < windowSize) publishOne(p)
      peer.uncork()
    }
  }

  const scheduleTopUp = (p: number): void => {
    if (queuedForTopUp[p] === 1) return
    queuedForTopUp[p] = 1
    if (topUpQueued.push(p) === 1) setImmediate(topUp)
  }

  function complete (p: number, now: number): void {
    inflight[p]!--
    lastProgress[p] = now
    scheduleTopUp(p)
  }

  // Connect and join.
  const connectHistogram = latencyHistogram()
  const connectStarted = performance.now()
  const opened = await connectAll(total, workload.connectConcurrency, c => BenchPeer.connect(target.dialect, target.host, target.port, sinkFor(c), workload.client), connectHistogram)
  const connectMs = round(performance.now() - connectStarted)
  peers.push(...opened)
  await Promise.all(peers.map((peer, c) => peer.join(roomName(roomOf[c] as number))))

  const closedByServer: Record<string, number> = {}
  const closedByServerSlow: Record<string, number> = {}
  let finished = false
  peers.forEach((peer, c) => {
    void peer.closed.then(() => {
      if (finished) return
      const code = String(peer.closeCode)
      const counts = c < clients ? closedByServer : closedByServerSlow
      counts[code] = (counts[code] ?? 0) + 1
    })
  })

  let currentPhase = workload.phases[0] as PhaseSpec
  const phases: PhaseResult[] = []
  const expectedNormal = (): number => {
    let expected = 0
    for (let p = 0; p < publishers; p++) expected += (published[p] as number) * (normalMembers[roomOf[p] as number] as number)
    return expected
  }
  const expectedAll = (): number => {
    let expected = 0
    for (let p = 0; p < publishers; p++) expected += (published[p] as number) * (members[roomOf[p] as number] as number)
    return expected
  }
  const bytesRead = (): number => peers.reduce((total, peer) => total + peer.bytesRead, 0)
  /** Waits until every expected receipt arrived, or nothing arrived for QUIET_MS. */
  const drain = async (done: () => boolean): Promise<void> => {
    const started = performance.now()
    lastReceiptAt = Math.max(lastReceiptAt, started)
    while (!done() && performance.now() - lastReceiptAt < QUIET_MS && performance.now() - started < DRAIN_MAX_MS) await sleep(20)
  }

  for (const phase of workload.phases) {
    currentPhase = phase
    windowMode = phase.rate === 0
    windowSize = phase.window
    samples = PRIORITY_NAMES.map(() => new LatencySamples())
    phaseDeliveries = 0
    for (let c = clients; c < total; c++) {
      if (phase.slowReadersPause) (peers[c] as BenchPeer).pause()
      else (peers[c] as BenchPeer).resume()
    }
    const publishedBefore = published.reduce((a, b) => a + b, 0)
    let stalls = 0
    let sendLagMaxMs = 0
    publishing = true
    const phaseStart = performance.now()
    let timer: NodeJS.Timeout
    if (windowMode) {
      inflight.fill(0)
      abandonedUpTo.set(published)
      lastProgress.fill(phaseStart)
      for (let p = 0; p < publishers; p++) scheduleTopUp(p)
      timer = setInterval(() => {
        const now = performance.now()
        for (let p = 0; p < publishers; p++) {
          if ((inflight[p] as number) > 0 && now - (lastProgress[p] as number) > STALL_MS) {
            stalls++
            abandonedUpTo[p] = published[p] as number
            inflight[p] = 0
            lastProgress[p] = now
            scheduleTopUp(p)
          }
        }
      }, 250)
    } else {
      const perPublisherMs = 1000 * publishers / phase.rate
      const sentInPhase = new Int32Array(publishers)
      // Publishers are staggered evenly, so that the total rate is spread out instead of arriving in
      // bursts of one message per publisher, which would measure queueing behind the burst.
      const offset = (p: number): number => p * perPublisherMs / publishers
      timer = setInterval(() => {
        const now = performance.now()
        for (let p = 0; p < publishers; p++) {
          const elapsed = now - phaseStart - offset(p)
          if (elapsed < 0) continue
          const due = Math.floor(elapsed / perPublisherMs) + 1
          const backlog = due - (sentInPhase[p] as number)
          if (backlog <= 0) continue
          sendLagMaxMs = Math.max(sendLagMaxMs, elapsed - (sentInPhase[p] as number) * perPublisherMs)
          const peer = peers[p] as BenchPeer
          peer.cork()
          for (let k = 0; k < backlog; k++) publishOne(p)
          peer.uncork()
          sentInPhase[p] = due
        }
      }, 1)
    }
    await sleep(phase.warmupMs)
    const stopWindow = startWindow(target.pid)
    const bytesAtStart = bytesRead()
    const publishedAtStart = published.reduce((a, b) => a + b, 0)
    const measureStart = performance.now()
    measuring = true
    await sleep(phase.durationMs)
    measuring = false
    const seconds = (performance.now() - measureStart) / 1000
    const usage = stopWindow()
    const wireBytes = bytesRead() - bytesAtStart
    const publishedInWindow = published.reduce((a, b) => a + b, 0) - publishedAtStart
    publishing = false
    clearInterval(timer)
    const lastPhase = phase === workload.phases[workload.phases.length - 1]
    if (lastPhase) for (let c = clients; c < total; c++) (peers[c] as BenchPeer).resume()
    await drain(() => (lastPhase ? normalReceived + slowReceived >= expectedAll() : normalReceived >= expectedNormal()))

    let offeredPerSec = 0
    if (!windowMode) for (let p = 0; p < publishers; p++) offeredPerSec += phase.rate / publishers * (members[roomOf[p] as number] as number)
    const histograms = samples.map(s => s.toHistogram())
    const all = latencyHistogram()
    for (const histogram of histograms) all.add(histogram)
    const mixed = new Set(Array.from({ length: 100 }, (_, i) => phase.priorityOf(publishedBefore + i + 1))).size > 1
    phases.push({
      name: phase.name,
      offeredPerSec: Math.round(offeredPerSec),
      publishedPerSec: Math.round(publishedInWindow / seconds),
      deliveriesPerSec: Math.round(phaseDeliveries / seconds),
      latencyMs: summarize(all),
      ...(mixed ? { byPriority: Object.fromEntries(PRIORITY_NAMES.map((name, i) => [name, summarize(histograms[i] as Histogram)])) } : {}),
      sendLagMaxMs: round(sendLagMaxMs, 2),
      stalls,
      wireBytesPerDelivery: phaseDeliveries === 0 ? NaN : round(wireBytes / phaseDeliveries, 1),
      usage
    })
  }

  // Every server here delivers one publisher's messages in order, so a message missing before the last
  // one a reader got was dropped, while the missing tail may only have been still queued when the
  // drain gave up (a server that fell seconds behind).
  const lostByPriority = emptyByPriority()
  const lostSlowByPriority = emptyByPriority()
  let undelivered = 0
  let undeliveredSlow = 0
  for (let c = 0; c < total; c++) {
    const counts = c < clients ? lostByPriority : lostSlowByPriority
    for (const p of roomPublishers[roomOf[c] as number] as number[]) {
      const slot = (slotBase[c] as number) + (localIndex[p] as number)
      const kinds = priorities[p] as Uint8Array
      let last = published[p] as number
      while (last > 0 && !received.has(slot, last)) last--
      if (c < clients) undelivered += (published[p] as number) - last
      else undeliveredSlow += (published[p] as number) - last
      for (let n = 1; n < last; n++) {
        if (!received.has(slot, n)) counts[PRIORITY_NAMES[kinds[n] as number] as string]!++
      }
    }
  }
  const errorFrames: Record<string, number> = {}
  let unexpectedFrames = 0
  for (const peer of peers) {
    unexpectedFrames += peer.unexpected
    for (const [code, count] of peer.errors) errorFrames[code] = (errorFrames[code] ?? 0) + count
  }
  finished = true
  for (const peer of peers) peer.destroy()
  return {
    connectMs,
    connectLatencyMs: summarize(connectHistogram),
    phases,
    lost: sum(lostByPriority),
    lostByPriority,
    lostSlow: sum(lostSlowByPriority),
    lostSlowByPriority,
    undelivered,
    undeliveredSlow,
    duplicates,
    reordered,
    misrouted,
    closedByServer,
    closedByServerSlow,
    errorFrames,
    unexpectedFrames
  }
}
