import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { nextMessage, spawnHelper } from './child.js'
import { settledRss } from './idle.js'
import { BenchPeer, benchPayload, isClientKind } from './peer.js'
import { ServerProcess, applyPrevFlag, ensureOpenFiles, metricSamples, openFileLimit } from './server-process.js'
import { latencyHistogram, round, summarize, type LatencySummary } from './stats.js'

const USAGE = `Usage: node --import=tsx bench/scale.ts [options]
The scale a user plans for: N connections joined to one room, spread over several Switchboard nodes
clustered over Redis (a process holds fewer sockets than the hard limit on open files), and a 1 msg/s
broadcast to all of them from a client of the first node.
  --connections=100000   clients, split evenly over the nodes, one load-generator process per node
  --nodes=6              Switchboard processes (BROKER=redis)
  --broadcasts=10        messages published, one per second
  --client=lean          or ws
  --redis=redis://127.0.0.1:6379
  --prev=REV             the nodes run git revision REV instead of the working tree (before/after)
  --storm                every client connects first, then all join at once (a reconnect storm);
                         joins refused (unavailable past REDIS_TIMEOUT_MS) are counted, not failed
  --recover=3            with --storm: every join recovers the last 3 messages of the room, as the
                         client's rejoin after a reconnect does (join with since)
  --smoke                600 connections, 2 nodes, 2 broadcasts: what CI runs`

const { values: flags } = parseArgs({
  options: {
    connections: { type: 'string', default: '100000' },
    nodes: { type: 'string', default: '6' },
    broadcasts: { type: 'string', default: '10' },
    client: { type: 'string', default: 'lean' },
    redis: { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    smoke: { type: 'boolean', default: false },
    storm: { type: 'boolean', default: false },
    recover: { type: 'string', default: '0' },
    prev: { type: 'string' },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log(USAGE)
  process.exit(0)
}
const connections = flags.smoke ? 600 : Number(flags.connections)
const nodeCount = flags.smoke ? 2 : Number(flags.nodes)
const broadcasts = flags.smoke ? 2 : Number(flags.broadcasts)
const client = flags.client
const recover = Number(flags.recover)
if (!Number.isInteger(connections) || !Number.isInteger(nodeCount) || !Number.isInteger(broadcasts) || connections < nodeCount || nodeCount < 1 || broadcasts < 1 || !Number.isInteger(recover) || recover < 0 || (recover > 0 && !flags.storm) || !isClientKind(client)) {
  console.error(USAGE)
  process.exit(2)
}
const server = flags.prev === undefined ? 'switchboard' : 'switchboard-prev'
applyPrevFlag(flags.prev, [server])
const perNode = Math.ceil(connections / nodeCount)
// Each node and each load-generator process holds perNode sockets, plus its own files; they inherit
// the soft limit this process raises.
const neededFiles = perNode + 200
const { hard } = openFileLimit()
if (neededFiles > hard) {
  console.error(`${perNode} sockets per process exceed the hard limit on open files (${hard}): use more --nodes`)
  process.exit(2)
}
ensureOpenFiles(neededFiles)
const ROOM = 'everyone'
const CONNECT_CONCURRENCY = 20
const BROADCAST_TIMEOUT_MS = 10_000
const BROADCAST_EVERY_MS = 1000
const id = randomBytes(4).toString('hex')
const SETTLE_MAX_MS = 10_000
const STOP_GRACE_MS = 30_000
const prefix = `scale-${id}:`
/** The nodes' RSS summed, each read once it stopped moving (idle.ts). */
const settledRssOf = async (nodes: ServerProcess[]): Promise<number> => {
  const readings = await Promise.all(nodes.map(node => settledRss(node.pid, SETTLE_MAX_MS)))
  return readings.reduce((total, reading) => total + reading.rss, 0)
}
interface HelperConnected {
  ms: number
  connectAndJoinMs: LatencySummary
  /** With --storm: the joins answered, how many of them recovered, those refused by code, and from the first join sent to the last answer. */
  joined?: number
  recovered?: number
  refused?: Record<string, number>
  stormMs?: number
}
const wallUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000)

const nodes: ServerProcess[] = []
const helpers: ChildProcess[] = []
try {
  for (let i = 0; i < nodeCount; i++) {
    nodes.push(await ServerProcess.start(server, {
      cpu: undefined,
      nodeArgs: [],
      env: { BROKER: 'redis', REDIS_URL: flags.redis, REDIS_PREFIX: prefix, NODE_ID: `scale-${i}`, DEMO: 'false' }
    }))
  }
  // Messages numbered 0 are the ones the storm's clients missed (--recover); broadcasts count from 1.
  let missedBack = (): void => {}
  const missedArrived = new Promise<void>(resolve => { missedBack = resolve })
  let missedSeen = 0
  const publisher = await BenchPeer.connect('v1', '127.0.0.1', (nodes[0] as ServerProcess).port, (_priority, _publisher, n) => {
    if (n === 0 && ++missedSeen === recover) missedBack()
  }, client)
  const { seq, epoch } = await publisher.join(ROOM) as { seq: number, epoch: string }
  for (let i = 0; i < recover; i++) publisher.publish(ROOM, benchPayload(2, 0, 0, wallUs(), 100), 2)
  if (recover > 0) await missedArrived
  const since = recover > 0 ? [JSON.stringify({ epoch, seq })] : []
  const rssBefore = await settledRssOf(nodes)

  const shares = nodes.map((_, i) => Math.min(perNode, connections - i * perNode))
  helpers.push(...nodes.map((node, i) => spawnHelper('bench/scale-clients.ts', undefined, [String(node.port), String(shares[i]), String(CONNECT_CONCURRENCY), ROOM, client, flags.storm ? 'storm' : 'as-connected', ...since])))
  const connected = await Promise.all(helpers.map(helper => nextMessage(helper, message => (typeof message.ms === 'number' ? message as unknown as HelperConnected : undefined))))
  const joined = flags.storm ? connected.reduce((total, helper) => total + (helper.joined ?? 0), 0) : connections
  const connectSeconds = Math.max(...connected.map(helper => helper.ms)) / 1000
  const rssPerConnection = (await settledRssOf(nodes) - rssBefore) / connections

  const complete = new Map<number, number>()
  const waiters = new Map<number, () => void>()
  for (const helper of helpers) {
    helper.on('message', (message: { complete?: number }) => {
      if (typeof message.complete !== 'number') return
      const done = (complete.get(message.complete) ?? 0) + 1
      complete.set(message.complete, done)
      if (done === helpers.length) waiters.get(message.complete)?.()
    })
  }
  for (let n = 1; n <= broadcasts; n++) {
    const sentAt = performance.now()
    const arrived = new Promise<void>(resolve => {
      const timer = setTimeout(resolve, BROADCAST_TIMEOUT_MS)
      waiters.set(n, () => {
        clearTimeout(timer)
        resolve()
      })
    })
    publisher.publish(ROOM, benchPayload(2, 0, n, wallUs(), 100), 2)
    await arrived
    const wait = BROADCAST_EVERY_MS - (performance.now() - sentAt)
    if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
  }

  const reports = await Promise.all(helpers.map(helper => {
    const report = nextMessage(helper, message => message.receipts as Record<string, number[]> | undefined)
    helper.send({ report: true })
    return report
  }))
  const all = latencyHistogram()
  const perBroadcast = Array.from({ length: broadcasts }, (_, k) => {
    let delivered = 0
    let lastMs = 0
    for (const report of reports) {
      for (const ms of report[String(k + 1)] ?? []) {
        all.recordValue(Math.max(1, Math.round(ms * 1000)))
        delivered++
        lastMs = Math.max(lastMs, ms)
      }
    }
    return { delivered, lastMs: round(lastMs, 1) }
  })
  publisher.destroy()
  // What each node took from Redis pub/sub over the whole run: publications, presence events, broadcasts.
  const brokerMessages = await Promise.all(nodes.map(async node => Object.values(metricSamples(await node.scrapeMetrics(), 'ws_broker_messages_received_total')).reduce((total, n) => total + n, 0)))
  const delivered = perBroadcast.reduce((total, b) => total + b.delivered, 0)
  const refused: Record<string, number> = {}
  for (const helper of connected) for (const [code, n] of Object.entries(helper.refused ?? {})) refused[code] = (refused[code] ?? 0) + n
  const stormSeconds = Math.max(...connected.map(helper => helper.stormMs ?? 0)) / 1000
  const result = {
    server: flags.prev === undefined ? 'switchboard' : `switchboard at ${flags.prev}`,
    connections,
    nodes: nodeCount,
    client,
    connectPerSec: Math.round(connections / connectSeconds),
    // Per load generator: a client's connect with its join (without it under --storm), from the upgrade request to the reply.
    connectAndJoinP99Ms: connected.map(helper => helper.connectAndJoinMs.p99),
    connectAndJoinMaxMs: Math.max(...connected.map(helper => helper.connectAndJoinMs.max)),
    rssKiBPerConnection: round(rssPerConnection / 1024, 2),
    brokerMessagesPerNode: brokerMessages,
    broadcasts,
    delivered,
    missing: joined * broadcasts - delivered,
    latencyMs: summarize(all),
    lastMs: perBroadcast.map(b => b.lastMs),
    ...(flags.storm ? { storm: { joined, ...(recover > 0 ? { recovered: connected.reduce((total, helper) => total + (helper.recovered ?? 0), 0) } : {}), refused, seconds: round(stormSeconds, 2), joinsPerSec: Math.round(joined / stormSeconds) } } : {})
  }
  console.log(JSON.stringify(result))
  if (result.missing > 0) {
    console.error(`${result.missing} deliveries did not arrive within ${BROADCAST_TIMEOUT_MS} ms`)
    process.exitCode = 1
  }
} finally {
  // A failed run must not leave load generators behind (a finished one has exited already).
  for (const helper of helpers) helper.kill()
  // A node that drains its share in time takes itself off the registry; the grace is for that.
  await Promise.all(nodes.map(node => node.stop(STOP_GRACE_MS)))
  const admin = new Redis(flags.redis)
  const keys = await admin.keys(`${prefix}*`)
  if (keys.length > 0) await admin.del(...keys)
  await admin.quit()
}
