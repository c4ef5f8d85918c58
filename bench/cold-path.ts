import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { FakeWebSocket, type RawSocket } from '../test/helpers/fake-websocket.js'
import { ROOT, applyPrevFlag, previousTreeOf } from './server-process.js'
import { median, round } from './stats.js'

/**
 * What one publish costs the server between reading the client's frame and handing the last member's
 * frame to its socket, with the CPU caches emptied before each publish, as on a lightly loaded server
 * where a publish arrives every millisecond and finds none of its data in cache. In one process, no
 * network: the sessions sit on sockets that only count what is written, so the machine's noise (steal,
 * the load generator, the kernel) stays out and a few percent can be told apart.
 *
 *   node --import=tsx bench/cold-path.ts                      # this tree
 *   node --import=tsx bench/cold-path.ts --prev=HEAD          # and the committed code, rounds interleaved
 *   node --import=tsx bench/cold-path.ts --members=1000 --rooms=1 --publishes=600   # a fan-out's shape
 *   node --import=tsx bench/cold-path.ts --smoke       # CI: a few hundred publishes, fails if a member missed one
 *   node --expose-gc --import=tsx bench/cold-path.ts --members=50 --rooms=100 --publishes=100
 *     # with --expose-gc and no --prev it also reports the heap per joined connection
 *
 * --thrash-mib (4 by default) is what is written before each publish: eight times a core's L2 here,
 * an eighth of the L3 that the host's other tenants share; 0 measures warm caches.
 *
 * Sessions, hub, memory engine and outboxes are the server's own (lib/), configured as `npm start`
 * configures them; each connection's objects are allocated with garbage in between, so they are
 * spread over the heap as a server's are. Not measured: ws's parsing and the kernel's write.
 */
const { values } = parseArgs({
  options: {
    members: { type: 'string', default: '10' },
    rooms: { type: 'string', default: '10' },
    publishes: { type: 'string', default: '4000' },
    'thrash-mib': { type: 'string', default: '4' },
    prev: { type: 'string' },
    smoke: { type: 'boolean', default: false }
  }
})
const members = Number(values.members)
const roomCount = Number(values.rooms)
const publishes = values.smoke === true ? 200 : Number(values.publishes)
const thrashMiB = Number(values['thrash-mib'])
for (const [name, value] of [['members', members], ['rooms', roomCount], ['publishes', publishes]] as const) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} takes a whole number of at least 1`)
    process.exit(2)
  }
}
if (!(thrashMiB >= 0)) {
  console.error('--thrash-mib takes a number of MiB, 0 for warm caches')
  process.exit(2)
}

/** Frames handed to the sockets of one contender, and when the last one of a publish was. */
interface Progress {
  written: number
  awaited: number
  lastAt: bigint
}

/** The stream under a WebSocket as the outbox and the session use it; writes are counted, not kept. */
class CountingSocket extends EventEmitter {
  writable = true
  writableLength = 0
  constructor (private readonly progress: Progress) { super() }
  cork (): void {}
  uncork (): void {}
  write (_chunk: Buffer, callback?: (error?: Error | null) => void): boolean {
    if (++this.progress.written === this.progress.awaited) this.progress.lastAt = process.hrtime.bigint()
    if (callback !== undefined) queueMicrotask(() => callback())
    return true
  }
}

interface Contender {
  name: string
  /** Heap bytes per connection that joined its room (the two fake socket objects included); NaN without --expose-gc. */
  heapPerConnection: number
  /** Runs publish `n`; resolves with the µs from handing over the client's frame to the last member's write. */
  publish (n: number): Promise<number>
}

const garbage: unknown[] = []
/** What the garbage between two connections holds, measured once. */
let garbageBytes = 0

/** heapUsed after full collections; NaN unless node runs with --expose-gc. */
async function settledHeap (): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) return NaN
  await new Promise(resolve => setImmediate(resolve))
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

async function contender (name: string, root: string): Promise<Contender> {
  const lib = (path: string): Promise<any> => import(join(root, 'lib', path)) // eslint-disable-line @typescript-eslint/no-explicit-any
  const [{ loadConfig }, { createEngine }, { Hub }, { OutboxRegistry }, { ConnectionEvents }, { ConnectionLimits }, { ClientSession }, { RoomPolicy }] = await Promise.all([
    lib('config.ts'), lib('engine/create.ts'), lib('node/hub.ts'), lib('delivery/outbox.ts'), lib('node/connection-events.ts'),
    lib('node/connection-limits.ts'), lib('node/session.ts'), lib('auth/permissions.ts')
  ])
  // The bench's server settings (bench/server-process.ts): no rate limit in the way.
  const config = loadConfig({ RATE_LIMIT_PER_SEC: '1000000', RATE_LIMIT_BURST: '1000000' })
  const engine = await createEngine({ size: config.historySize, ttlMs: config.historyTtlMs, maxBytes: config.historyMaxBytes, idempotencyTtlMs: config.idempotencyTtlMs, broker: 'memory', history: 'memory', presence: 'memory' })
  const context = {
    hub: new Hub(engine, { recoveryMax: config.recoveryMax }),
    outboxes: new OutboxRegistry({ maxMessages: config.sendQueueSize, maxBytes: config.sendQueueBytes, writeBatch: config.writeBatch, writeHighWater: config.writeHighWater }),
    workerPool: { cancelOwner () {} },
    settings: config,
    events: new ConnectionEvents({ info () {}, warn () {} }),
    tokens: undefined,
    policy: RoomPolicy.open(),
    limits: new ConnectionLimits({ maxConnections: 0, maxConnectionsPerIp: 0, maxConnectionsPerUser: 0 }),
    isDraining: () => false
  }
  const progress: Progress = { written: 0, awaited: -1, lastAt: 0n }
  const heapBefore = await settledHeap()
  const rooms: FakeWebSocket[] = []
  for (let r = 0; r < roomCount; r++) {
    let publisher: FakeWebSocket | undefined
    for (let m = 0; m < members; m++) {
      const raw = new CountingSocket(progress)
      // The session writes to the socket under the WebSocket; this one counts instead of keeping.
      const socket = new FakeWebSocket(raw as unknown as RawSocket)
      new ClientSession(socket, context) // eslint-disable-line no-new
      // The welcome is written before the join arrives, as it is for a client on a network.
      await new Promise(resolve => setImmediate(resolve))
      socket.emit('message', Buffer.from(`{"op":"join","room":"r${r}","ref":1}`), false)
      raw.emit('data')
      publisher ??= socket
      for (let i = 0; i < GARBAGE_PER_CONNECTION; i++) garbage.push({ i, list: [i, i + 1] })
    }
    rooms.push(publisher as FakeWebSocket)
  }
  // Every welcome, join reply and presence notice goes out before publishes are counted.
  await new Promise(resolve => setTimeout(resolve, 100))
  // The garbage that spreads the connections over the heap is not theirs.
  const heapPerConnection = (await settledHeap() - heapBefore - garbageBytes) / (roomCount * members)
  const pad = 'x'.repeat(50)
  return {
    name,
    heapPerConnection,
    async publish (n) {
      const publisher = rooms[n % roomCount] as FakeWebSocket
      const frame = Buffer.from(`{"op":"publish","room":"r${n % roomCount}","data":{"bench":"2:0:${n}:1796150000000","pad":"${pad}"},"priority":"normal"}`)
      progress.awaited = progress.written + members
      const started = process.hrtime.bigint()
      // ws emits 'message' from the stream's 'data' listener; the session's own listener runs next.
      publisher.emit('message', frame, false)
      ;(publisher._socket as unknown as CountingSocket).emit('data')
      // What the publish left for microtasks and later turns (a pass longer than the pump's slice
      // continues in the next one) happens before this resolves.
      for (let turns = 0; turns < 100 && progress.written < progress.awaited; turns++) await new Promise(resolve => setImmediate(resolve))
      if (progress.written !== progress.awaited) throw new Error(`${name}: publish ${n} reached ${members - (progress.awaited - progress.written)} of ${members} members`)
      return Number(progress.lastAt - started) / 1000
    }
  }
}

const GARBAGE_PER_CONNECTION = 200
{
  const before = await settledHeap()
  const sample: unknown[] = []
  for (let i = 0; i < GARBAGE_PER_CONNECTION * roomCount * members; i++) sample.push({ i, list: [i, i + 1] })
  garbageBytes = await settledHeap() - before
  sample.length = 0
}
const contenders = [await contender('switchboard', ROOT)]
if (values.prev !== undefined) {
  applyPrevFlag(values.prev, ['switchboard-prev'])
  contenders.push(await contender('switchboard-prev', previousTreeOf()))
}

const thrash = new Float64Array(Math.round(thrashMiB * (1 << 20) / 8))
function emptyCaches (seed: number): void {
  // One write per 64-byte line.
  for (let i = 0; i < thrash.length; i += 8) thrash[i] = seed
}

const samples = new Map(contenders.map(c => [c.name, [] as number[]]))
const warmup = Math.min(1000, publishes / 2)
for (let n = 0; n < warmup + publishes; n++) {
  // The order alternates: the second of two runs right after the first, which may leave it some cache.
  for (const c of n % 2 === 0 ? contenders : [...contenders].reverse()) {
    emptyCaches(n)
    const took = await c.publish(n)
    if (n >= warmup) samples.get(c.name)?.push(took)
  }
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
console.log(`${publishes} publishes to rooms of ${members}, caches emptied (${thrashMiB} MiB written) before each: µs from the client frame to the last member's write`)
for (const [name, values] of samples) {
  const sorted = [...values].sort((a, b) => a - b)
  console.log(`${name.padEnd(17)} p25 ${round(quantile(sorted, 0.25), 1)}  p50 ${round(median(sorted), 1)}  p75 ${round(quantile(sorted, 0.75), 1)}  p90 ${round(quantile(sorted, 0.9), 1)}`)
}
// Only for one tree: the second of two measured 500 bytes more for the same code.
for (const c of contenders.length === 1 ? contenders : []) {
  if (!Number.isNaN(c.heapPerConnection)) console.log(`${c.name.padEnd(17)} heap per joined connection: ${Math.round(c.heapPerConnection)} bytes (its two fake socket objects included)`)
}
if (contenders.length === 2) {
  const [a, b] = [samples.get('switchboard') as number[], samples.get('switchboard-prev') as number[]]
  console.log(`switchboard ÷ switchboard-prev at p50: ${round(median(a) / median(b), 3)}×`)
}
