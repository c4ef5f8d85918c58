import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import amqp from 'amqplib'
import { Redis } from 'ioredis'
import pg from 'pg'
import WebSocket from 'ws'
import { ServerProcess, TASKSET, pinSelf, sampleProcess, type ProcSample } from './server-process.js'
import { LatencySamples, median, round, summarize, type LatencySummary } from './stats.js'

const USAGE = `Usage: node --import=tsx bench/cluster.ts [options]
  --setups=memory,redis,cluster   memory: 1 node, memory engine; redis: 1 node, BROKER=redis;
                                  cluster: 2 nodes over Redis, receivers split between them;
                                  also redis-pg, nats-pg, amqp-pg, amqp-fanout: 2 nodes each,
                                  BROKER=redis/nats/amqp with HISTORY=postgres (amqp: PRESENCE=redis)
  --receivers=200     ws clients joined to the room (split evenly across the setup's nodes)
  --rate=200          publishes per second in the light phase
  --window=32         publishes in flight in the saturation phase
  --duration=5        measured seconds per phase
  --repeats=3         runs per setup, interleaved; medians and spreads are reported
  --redis=redis://127.0.0.1:6379
  --profile=DIR       run the nodes under --cpu-prof, writing profiles to DIR/<setup>-<node>
  --smoke             10 receivers, 1 s phases, 1 repeat, unpinned; fails on any loss`

const { values: flags } = parseArgs({
  options: {
    setups: { type: 'string', default: 'memory,redis,cluster' },
    receivers: { type: 'string', default: '200' },
    rate: { type: 'string', default: '200' },
    window: { type: 'string', default: '32' },
    duration: { type: 'string', default: '5' },
    repeats: { type: 'string', default: '3' },
    redis: { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    smoke: { type: 'boolean', default: false },
    profile: { type: 'string' },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log(USAGE)
  process.exit(0)
}

const SETUPS = {
  memory: { nodes: 1, redis: false, env: {} },
  redis: { nodes: 1, redis: true, env: { BROKER: 'redis' } },
  cluster: { nodes: 2, redis: true, env: { BROKER: 'redis' } },
  'redis-pg': { nodes: 2, redis: true, env: { BROKER: 'redis', HISTORY: 'postgres' } },
  'nats-pg': { nodes: 2, redis: false, env: { BROKER: 'nats', HISTORY: 'postgres' } },
  'amqp-pg': { nodes: 2, redis: true, env: { BROKER: 'amqp', HISTORY: 'postgres', PRESENCE: 'redis' } },
  'amqp-fanout': { nodes: 2, redis: true, env: { BROKER: 'amqp', HISTORY: 'postgres', PRESENCE: 'redis', AMQP_ROUTING: 'fanout' } }
} as const
type SetupName = keyof typeof SETUPS
const setups = flags.setups.split(',').map(name => name.trim()) as SetupName[]
for (const name of setups) {
  if (!Object.hasOwn(SETUPS, name)) {
    console.error(`unknown setup ${name}\n${USAGE}`)
    process.exit(2)
  }
}
const smoke = flags.smoke
const receiversTotal = smoke ? 10 : Number(flags.receivers)
const rate = smoke ? 100 : Number(flags.rate)
const windowSize = Number(flags.window)
const durationMs = (smoke ? 1 : Number(flags.duration)) * 1000
const repeats = smoke ? 1 : Number(flags.repeats)

/**
 * Servers share CPU 0 (a cluster's two nodes take turns on it, as two nodes on one core would); this
 * load generator runs on CPU 1; the shared Redis is the machine's own service and is not pinned.
 */
const pinned = !smoke && TASKSET && pinSelf(1)
const redisUrl = flags.redis
const admin = new Redis(redisUrl)
const redisPid = Number(/process_id:(\d+)/.exec(await admin.info('server'))?.[1])

interface Message { i: number, t: number }

class Receiver {
  readonly latencies = new LatencySamples()
  received = 0
  constructor (readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as { op: string, data?: Message }
      if (frame.op !== 'message' || frame.data === undefined) return
      this.received++
      this.latencies.record((performance.now() - frame.data.t) * 1000)
    })
  }
}

/** Opens a ws client, waits for its welcome and joins the room. */
async function joined (port: number, room: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject)
    ws.on('message', function onMessage (data: Buffer) {
      const frame = JSON.parse(data.toString()) as { op: string, ref?: number, ok?: boolean }
      if (frame.op === 'welcome') ws.send(JSON.stringify({ op: 'join', room, ref: 1 }))
      if (frame.ref === 1) {
        ws.off('message', onMessage)
        frame.ok === true ? resolve() : reject(new Error(`join failed: ${data.toString()}`))
      }
    })
  })
  return ws
}

/** A publisher that counts acknowledgements and times them from send to reply. */
class Publisher {
  readonly acks = new LatencySamples()
  acked = 0
  failed = 0
  private nextRef = 100
  private readonly sent = new Map<number, number>()
  private waiting: (() => void) | undefined

  constructor (private readonly ws: WebSocket, private readonly room: string) {
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as { op: string, ref?: number }
      if (frame.ref === undefined) return
      const sentAt = this.sent.get(frame.ref)
      if (sentAt === undefined) return
      this.sent.delete(frame.ref)
      if (frame.op === 'reply') {
        this.acked++
        this.acks.record((performance.now() - sentAt) * 1000)
      } else {
        this.failed++
      }
      this.waiting?.()
    })
  }

  get inFlight (): number {
    return this.sent.size
  }

  publish (i: number): void {
    const ref = this.nextRef++
    const t = performance.now()
    this.sent.set(ref, t)
    this.ws.send(`{"op":"publish","room":"${this.room}","ref":${ref},"data":{"i":${i},"t":${t}}}`)
  }

  /** Resolves when a reply arrives. */
  reply (): Promise<void> {
    return new Promise(resolve => { this.waiting = resolve })
  }
}

interface PhaseResult {
  publishesPerSec: number
  deliveriesPerSec: number
  delivery: LatencySummary
  ack: LatencySummary
  lost: number
  /** CPU seconds per publish: all nodes together, and the Redis server. */
  nodeCpuUsPerPublish: number
  redisCpuUsPerPublish: number
  /** This process's share of its core: near 100 % the load generator is what limits the phase. */
  loadgenCpuPct: number
}

function cpuOf (samples: ProcSample[]): number {
  return samples.reduce((sum, sample) => sum + sample.cpuSeconds, 0)
}

async function runSetup (name: SetupName): Promise<{ light: PhaseResult, saturation: PhaseResult }> {
  const setup = SETUPS[name]
  const id = randomBytes(4).toString('hex')
  const prefix = `bench:${id}:`
  // Names of its own in every shared service, removed after the run.
  const env: Record<string, string> = { ...setup.env, REDIS_URL: redisUrl, REDIS_PREFIX: prefix, DATABASE_SCHEMA: `bench_${id}`, AMQP_EXCHANGE: `bench.${id}`, NATS_PREFIX: `bench${id}` }
  const nodes: ServerProcess[] = []
  for (let i = 0; i < setup.nodes; i++) {
    const nodeArgs = flags.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${flags.profile}/${name}-${i}`]
    nodes.push(await ServerProcess.start('switchboard', { cpu: pinned ? 0 : undefined, nodeArgs, env: { ...env, DEMO: 'false', NODE_ID: `bench-${i}` } }))
  }
  const clients: WebSocket[] = []
  try {
    const room = 'bench'
    const receivers: Receiver[] = []
    for (let i = 0; i < receiversTotal; i++) {
      const ws = await joined((nodes[i % nodes.length] as ServerProcess).port, room)
      clients.push(ws)
      receivers.push(new Receiver(ws))
    }
    const publisherWs = await joined((nodes[0] as ServerProcess).port, room)
    clients.push(publisherWs)
    receivers.push(new Receiver(publisherWs))
    const publisher = new Publisher(publisherWs, room)
    let i = 0

    const measure = async (drive: (until: number) => Promise<void>): Promise<PhaseResult> => {
      // Warm up with the same traffic, then count from zero.
      await drive(performance.now() + Math.min(2000, durationMs))
      await drain(publisher)
      await settle(receivers, i)
      const before = receivers.map(r => r.received)
      for (const receiver of receivers) Object.assign(receiver, { latencies: new LatencySamples() })
      Object.assign(publisher, { acks: new LatencySamples() })
      const acked = publisher.acked
      const nodeCpu = cpuOf(nodes.map(node => node.sample()))
      const redisCpu = sampleProcess(redisPid).cpuSeconds
      const loadgenCpu = process.cpuUsage()
      const started = performance.now()
      const firstI = i
      await drive(started + durationMs)
      await drain(publisher)
      const seconds = (performance.now() - started) / 1000
      const loadgenUsed = process.cpuUsage(loadgenCpu)
      const published = publisher.acked - acked
      // Every receiver gets every message published in the window; the tail may still be on its way.
      const expected = i - firstI
      await settle(receivers, i)
      const delivered = receivers.reduce((sum, r, k) => sum + r.received - (before[k] as number), 0)
      const deliveryHistogram = receivers[0]!.latencies.toHistogram()
      for (const receiver of receivers.slice(1)) deliveryHistogram.add(receiver.latencies.toHistogram())
      return {
        publishesPerSec: Math.round(published / seconds),
        deliveriesPerSec: Math.round(delivered / seconds),
        delivery: summarize(deliveryHistogram),
        ack: summarize(publisher.acks.toHistogram()),
        lost: expected * receivers.length - delivered,
        nodeCpuUsPerPublish: round((cpuOf(nodes.map(node => node.sample())) - nodeCpu) * 1e6 / Math.max(1, published), 1),
        redisCpuUsPerPublish: setup.redis ? round((sampleProcess(redisPid).cpuSeconds - redisCpu) * 1e6 / Math.max(1, published), 1) : 0,
        loadgenCpuPct: round((loadgenUsed.user + loadgenUsed.system) / 1e4 / seconds)
      }
    }

    const light = await measure(async until => {
      const interval = 1000 / rate
      let due = performance.now()
      while (performance.now() < until) {
        publisher.publish(i++)
        due += interval
        const wait = due - performance.now()
        if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
      }
    })
    const saturation = await measure(async until => {
      while (performance.now() < until) {
        while (publisher.inFlight < windowSize) publisher.publish(i++)
        await publisher.reply()
      }
    })
    if (publisher.failed > 0) throw new Error(`${publisher.failed} publishes failed`)
    return { light, saturation }
  } finally {
    for (const ws of clients) ws.terminate()
    for (const node of nodes) await node.stop()
    if (setup.redis) {
      const keys = await admin.keys(`${prefix}*`)
      if (keys.length > 0) await admin.del(...keys)
    }
    if ('HISTORY' in setup.env) {
      const client = new pg.Client({ connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' })
      await client.connect()
      await client.query(`DROP SCHEMA IF EXISTS bench_${id} CASCADE`)
      await client.end()
    }
    if ('BROKER' in setup.env && setup.env.BROKER === 'amqp') {
      const connection = await amqp.connect(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672')
      const channel = await connection.createChannel()
      for (const suffix of ['rooms', 'fanout', 'broadcast']) await channel.deleteExchange(`bench.${id}.${suffix}`)
      await connection.close()
    }
  }
}

/** Waits (at most 5 s) until every receiver has the `published` messages sent so far. */
async function settle (receivers: Receiver[], published: number): Promise<void> {
  const deadline = performance.now() + 5000
  while (receivers.some(r => r.received < published) && performance.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
}

async function drain (publisher: Publisher): Promise<void> {
  while (publisher.inFlight > 0) await publisher.reply()
}

const runs = new Map<SetupName, { light: PhaseResult, saturation: PhaseResult }[]>(setups.map(name => [name, []]))
for (let repeat = 0; repeat < repeats; repeat++) {
  for (const name of setups) {
    const result = await runSetup(name)
    runs.get(name)?.push(result)
    console.log(JSON.stringify({ setup: name, repeat, ...result }))
  }
}
await admin.quit()

const spread = (values: number[]): string => `${round(median(values), 2)} (${round(Math.min(...values), 2)}–${round(Math.max(...values), 2)})`
console.log(`\nmedians (min–max) over ${repeats} runs; ${receiversTotal} ws receivers + the publisher; servers ${pinned ? 'on CPU 0, load generator on CPU 1' : 'unpinned'}; Redis unpinned`)
console.log('| setup | light p50 ms | light p99 ms | ack p99 ms | node CPU µs/publish | Redis CPU µs/publish | saturation publishes/s | deliveries/s | load generator CPU % |')
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
let lost = 0
for (const [name, results] of runs) {
  lost += results.reduce((sum, r) => sum + r.light.lost + r.saturation.lost, 0)
  console.log(`| ${name} | ${spread(results.map(r => r.light.delivery.p50))} | ${spread(results.map(r => r.light.delivery.p99))} | ${spread(results.map(r => r.light.ack.p99))} | ${spread(results.map(r => r.saturation.nodeCpuUsPerPublish))} | ${spread(results.map(r => r.saturation.redisCpuUsPerPublish))} | ${spread(results.map(r => r.saturation.publishesPerSec))} | ${spread(results.map(r => r.saturation.deliveriesPerSec))} | ${spread(results.map(r => r.saturation.loadgenCpuPct))} |`)
}
if (lost > 0) {
  console.error(`${lost} deliveries were lost`)
  process.exitCode = 1
}
