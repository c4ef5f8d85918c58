import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { ServerProcess, metricSamples } from './server-process.js'

const USAGE = `Usage: npm run soak -- [options]
  --minutes=10        how long the churn runs (--seconds overrides it)
  --seconds=N
  --connections=10000 clients kept connected (1 % of them replaced every second)
  --rooms=1000        rooms they join (2 each)
  --rate=200          publishes per second, over all rooms
  --out=FILE          the samples as JSON (default bench/results/soak.json)
  --smoke             30 s, 500 connections, 50 rooms: what CI runs
Fails if a reading client misses a message, if live state (connections, rooms, memberships, outboxes,
queued messages, presence, tasks, idempotency records, timers) does not return to zero once every
client left, or (runs of 3 minutes or more) if heap or RSS grows more than 10 % between minute 2 and
the end.`

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    seconds: { type: 'string' },
    connections: { type: 'string', default: '10000' },
    rooms: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '200' },
    out: { type: 'string', default: 'bench/results/soak.json' },
    smoke: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log(USAGE)
  process.exit(0)
}
const seconds = flags.smoke ? 30 : Number(flags.seconds ?? Number(flags.minutes) * 60)
const connections = flags.smoke ? 500 : Number(flags.connections)
const rooms = flags.smoke ? 50 : Number(flags.rooms)
const rate = Number(flags.rate)

type Kind = 'reader' | 'slow' | 'publisher'

/** A soak client: joins two rooms, checks that every seq of them arrives (readers), or stops reading (slow). */
class Client {
  readonly ws: WebSocket
  private readonly last = new Map<string, number>()
  private nextRef = 1
  joined = false
  /** joinAll's current batch: resolved once `target` rooms are joined. */
  private joinWaiter: { target: number, resolve: () => void } | undefined

  constructor (port: number, readonly kind: Kind, readonly roomsOf: string[], private readonly tally: Tally) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
    this.ws.on('error', () => {})
    this.ws.on('message', (data: Buffer) => { this.receive(JSON.parse(data.toString()) as Record<string, unknown>) })
    if (kind === 'slow') this.ws.once('open', () => { (this.ws as unknown as { _socket: { pause (): void } })._socket.pause() })
  }

  send (op: Record<string, unknown>): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ ...op, ref: this.nextRef++ }))
  }

  /**
   * Joins the rooms a batch at a time, each batch once the previous one was answered: a thousand joins
   * at once would queue a thousand replies, near SEND_QUEUE_SIZE, for a client whose loop is busy.
   */
  async joinAll (rooms: string[], batch = 50): Promise<void> {
    for (let i = 0; i < rooms.length; i += batch) {
      const answered = new Promise<void>(resolve => { this.joinWaiter = { target: Math.min(rooms.length, i + batch), resolve } })
      for (const room of rooms.slice(i, i + batch)) this.send({ op: 'join', room })
      await answered
    }
    this.joinWaiter = undefined
  }

  private receive (frame: Record<string, unknown>): void {
    if (frame.op === 'welcome') {
      for (const room of this.roomsOf) this.send({ op: 'join', room, presence: this.kind === 'reader' })
      return
    }
    if (frame.op === 'reply' && typeof frame.room === 'string' && typeof frame.seq === 'number' && !this.last.has(frame.room)) {
      this.last.set(frame.room, frame.seq)
      this.joined = true
      if (this.joinWaiter !== undefined && this.last.size >= this.joinWaiter.target) this.joinWaiter.resolve()
      return
    }
    if (frame.op === 'error') this.tally.errors[frame.code as string] = (this.tally.errors[frame.code as string] ?? 0) + 1
    if (frame.op !== 'message' || this.kind !== 'reader') return
    this.tally.delivered++
    const room = frame.room as string
    const seq = frame.seq as number
    const last = this.last.get(room)
    // Messages that arrive before the join's reply were published before it: the reply's seq covers them.
    if (last === undefined) return
    if (seq > last + 1) this.tally.lost += seq - last - 1
    if (seq > last) this.last.set(room, seq)
  }
}

interface Tally { delivered: number, lost: number, errors: Record<string, number> }

const tally: Tally = { delivered: 0, lost: 0, errors: {} }
// Idempotency records live for IDEMPOTENCY_TTL_MS after the last client left: short, so the check can wait for them.
const IDEMPOTENCY_TTL_MS = 5000
const server = await ServerProcess.start('switchboard', { cpu: undefined, nodeArgs: [], env: { DEMO: 'false', MAX_CONNECTIONS: '0', MAX_ROOMS_PER_CONNECTION: String(Math.max(64, rooms)), IDEMPOTENCY_TTL_MS: String(IDEMPOTENCY_TTL_MS) } })
const samples: Record<string, number>[] = []
let clients: Client[] = []
let exitCode = 0
try {
  const roomName = (i: number): string => `soak-${i % rooms}`
  const kindOf = (i: number): Kind => (i % 100 === 0 ? 'slow' : 'reader')
  const open = (i: number): Client => new Client(server.port, kindOf(i), [roomName(i), roomName(i * 7 + 3)], tally)
  let opened = 0
  while (opened < connections) {
    const batch = Array.from({ length: Math.min(200, connections - opened) }, () => open(opened++))
    await Promise.all(batch.map(client => new Promise(resolve => { client.ws.once('open', resolve); client.ws.once('error', resolve) })))
    clients.push(...batch)
  }
  const publisher = new Client(server.port, 'publisher', [], tally)
  let publisherClosed: number | undefined
  publisher.ws.on('close', (code: number) => { publisherClosed ??= code })
  await new Promise(resolve => publisher.ws.once('open', resolve))
  await publisher.joinAll(Array.from({ length: rooms }, (_, r) => roomName(r)))

  const metric = (text: string, name: string, labels = ''): number => metricSamples(text, name)[labels] ?? 0
  // Timers the server runs for itself (heartbeat sweep, history sweep, ...); those of connections come on top.
  const timers = (text: string): number => metric(text, 'nodejs_active_resources', 'type=Timeout')
  const ownTimers = timers(await server.scrapeMetrics())
  const started = Date.now()
  let published = 0
  const publishTimer = setInterval(() => {
    // A tenth of a second's worth at a time, spread over the rooms.
    // Every fourth carries an id, so publish idempotency records come and go during the run.
    for (let i = 0; i < rate / 10; i++) {
      const n = published++
      publisher.send({ op: 'publish', room: roomName(n), data: { n }, ...(n % 4 === 0 ? { id: `soak-${n}` } : {}) })
    }
  }, 100)
  while (Date.now() - started < seconds * 1000) {
    const second = Date.now()
    // 1 % churn: half close politely, half vanish without a close frame.
    const churn = Math.max(1, Math.floor(clients.length / 100))
    for (let c = 0; c < churn; c++) {
      const index = Math.floor(Math.random() * clients.length)
      const old = clients[index] as Client
      if (c % 2 === 0) old.ws.close()
      else old.ws.terminate()
      clients[index] = open(opened++)
    }
    // Tasks, history and presence from random clients.
    for (let k = 0; k < 10; k++) {
      const client = clients[Math.floor(Math.random() * clients.length)] as Client
      if (!client.joined) continue
      const room = client.roomsOf[0] as string
      client.send(k % 3 === 0 ? { op: 'task', name: 'echo', data: k, key: `soak-${second}-${k}` } : k % 3 === 1 ? { op: 'history', room, limit: 10 } : { op: 'presence', room, limit: 10 })
    }
    const process = server.sample()
    const text = await server.scrapeMetrics()
    samples.push({
      t: Math.round((Date.now() - started) / 1000),
      rssMiB: +(process.rssBytes / 2 ** 20).toFixed(1),
      heapMiB: +(metric(text, 'nodejs_heap_size_used_bytes') / 2 ** 20).toFixed(1),
      // What V8 holds from the system (RSS follows it, not the used heap) and Buffers outside the heap.
      heapTotalMiB: +(metric(text, 'nodejs_heap_size_total_bytes') / 2 ** 20).toFixed(1),
      externalMiB: +(metric(text, 'nodejs_external_memory_bytes') / 2 ** 20).toFixed(1),
      lagP99Ms: +(metric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000).toFixed(2),
      // Labelled by handle type (Socket, Server, ...): all of them together.
      handles: Object.values(metricSamples(text, 'nodejs_active_handles')).reduce((sum, value) => sum + value, 0),
      timers: timers(text),
      idempotencyRecords: metric(text, 'ws_idempotency_records', 'kind=task') + metric(text, 'ws_idempotency_records', 'kind=publish'),
      connections: metric(text, 'ws_active_connections'),
      rooms: metric(text, 'ws_rooms'),
      queued: metric(text, 'ws_send_queue_length'),
      delivered: tally.delivered,
      lost: tally.lost
    })
    await new Promise(resolve => setTimeout(resolve, Math.max(0, 1000 - (Date.now() - second))))
  }
  clearInterval(publishTimer)
  const publisherSurvived = publisherClosed === undefined

  // Everyone leaves; the server must come back to nothing.
  for (const client of [...clients, publisher]) client.ws.terminate()
  clients = []
  const deadline = Date.now() + 30_000 + IDEMPOTENCY_TTL_MS
  let live: Record<string, number> = {}
  do {
    await new Promise(resolve => setTimeout(resolve, 500))
    const text = await server.scrapeMetrics()
    live = {
      connections: metric(text, 'ws_active_connections'),
      rooms: metric(text, 'ws_rooms'),
      memberships: metric(text, 'ws_room_memberships'),
      outboxes: metric(text, 'ws_outboxes'),
      queued: metric(text, 'ws_send_queue_length'),
      presence: metric(text, 'ws_presence_members'),
      tasks: metric(text, 'ws_worker_queue_length'),
      taskIdempotencyRecords: metric(text, 'ws_idempotency_records', 'kind=task'),
      publishIdempotencyRecords: metric(text, 'ws_idempotency_records', 'kind=publish'),
      connectionTimers: timers(text) - ownTimers
    }
  } while (Object.values(live).some(value => value !== 0) && Date.now() < deadline)

  const at = (t: number): Record<string, number> => samples.find(sample => (sample.t as number) >= t) ?? (samples.at(-1) as Record<string, number>)
  const end = samples.at(-1) as Record<string, number>
  // Heap and RSS saw-tooth between collections: compare their floors (the lowest sample) over the minute
  // after minute 2 and over the last minute, not two single samples.
  const floor = (key: string, from: number, to: number): number => Math.min(...samples.filter(sample => (sample.t as number) >= from && (sample.t as number) < to).map(sample => sample[key] as number))
  const growth = (key: string): number => (floor(key, seconds - 60, seconds + 1) - floor(key, 120, 180)) / floor(key, 120, 180)
  const summary = {
    seconds,
    connections,
    rooms,
    publishesPerSec: rate,
    published,
    delivered: tally.delivered,
    lostToReaders: tally.lost,
    publisherSurvived,
    errors: tally.errors,
    rssStartMiB: samples[0]?.rssMiB,
    rssMinute2MiB: at(120).rssMiB,
    rssEndMiB: end.rssMiB,
    heapMinute2MiB: at(120).heapMiB,
    heapEndMiB: end.heapMiB,
    heapFloorAfterMinute2MiB: seconds >= 180 ? floor('heapMiB', 120, 180) : undefined,
    heapFloorLastMinuteMiB: seconds >= 180 ? floor('heapMiB', seconds - 60, seconds + 1) : undefined,
    rssFloorAfterMinute2MiB: seconds >= 180 ? floor('rssMiB', 120, 180) : undefined,
    rssFloorLastMinuteMiB: seconds >= 180 ? floor('rssMiB', seconds - 60, seconds + 1) : undefined,
    heapTotalFloorAfterMinute2MiB: seconds >= 180 ? floor('heapTotalMiB', 120, 180) : undefined,
    heapTotalFloorLastMinuteMiB: seconds >= 180 ? floor('heapTotalMiB', seconds - 60, seconds + 1) : undefined,
    // What the zero check below is checked against: the peaks during the run.
    peakIdempotencyRecords: Math.max(...samples.map(sample => sample.idempotencyRecords as number)),
    serverTimers: ownTimers,
    peakTimers: Math.max(...samples.map(sample => sample.timers as number)),
    liveAfterAllLeft: live
  }
  mkdirSync(dirname(flags.out), { recursive: true })
  writeFileSync(flags.out, JSON.stringify({ summary, samples }, null, 1))
  console.log(JSON.stringify(summary))
  const failures: string[] = []
  if (tally.lost > 0) failures.push(`${tally.lost} messages lost to reading clients`)
  if (!publisherSurvived) failures.push(`the publisher was closed with ${publisherClosed} during the run`)
  if (Object.values(live).some(value => value !== 0)) failures.push(`live state after every client left: ${JSON.stringify(live)}`)
  if (seconds >= 180) {
    if (growth('heapMiB') > 0.1) failures.push(`heap grew ${(growth('heapMiB') * 100).toFixed(1)} % after minute 2`)
    if (growth('rssMiB') > 0.1) failures.push(`RSS grew ${(growth('rssMiB') * 100).toFixed(1)} % after minute 2`)
  }
  if (failures.length > 0) {
    console.error(failures.join('\n'))
    exitCode = 1
  }
} finally {
  for (const client of clients) client.ws.terminate()
  await server.stop()
}
process.exit(exitCode)
