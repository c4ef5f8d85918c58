import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { connectAll } from './loadgen.js'
import { BenchPeer, benchPayload } from './peer.js'
import { ServerProcess, applyPrevFlag, ensureOpenFiles, type ServerName } from './server-process.js'
import { latencyHistogram, round, summarize } from './stats.js'

const USAGE = `Usage: node --import=tsx bench/redis-presence.ts [options]
What presence costs on the Redis engine, for switchboard and (with --prev=REV) switchboard-prev, taking
turns:
  joins:   one client after another connects and joins the same room; the join's reply time.
  refresh: two nodes; node A holds --members clients in one room and refreshes their presence every
           second (PRESENCE_TTL_MS=3000). A client of A publishes 200 msg/s to another room and a
           client of B receives them: that latency, and the longest Redis command (its slowlog).
  --members=16000 --joins=400 --repeats=2 --prev=REV
  --smoke    100 joins, 300 members, 1 repeat: what CI runs`

const { values: flags } = parseArgs({
  options: {
    members: { type: 'string', default: '16000' },
    joins: { type: 'string', default: '400' },
    repeats: { type: 'string', default: '2' },
    prev: { type: 'string' },
    redis: { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    smoke: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log(USAGE)
  process.exit(0)
}
const members = flags.smoke ? 300 : Number(flags.members)
const joins = flags.smoke ? 100 : Number(flags.joins)
const repeats = flags.smoke ? 1 : Number(flags.repeats)
if (![members, joins, repeats].every(n => Number.isInteger(n) && n > 0)) {
  console.error(USAGE)
  process.exit(2)
}
const servers: ServerName[] = flags.prev === undefined ? ['switchboard'] : ['switchboard', 'switchboard-prev']
applyPrevFlag(flags.prev, servers)
ensureOpenFiles(members + 500)
const PUBLISHES = flags.smoke ? 200 : 1600
const PUBLISH_EVERY_MS = 5
/** Joins before this many are not counted: the server's code is still being compiled. */
const JOIN_WARMUP = Math.min(50, joins >> 2)
const admin = new Redis(flags.redis)
const wallUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000)

async function withPrefix<T> (work: (prefix: string) => Promise<T>): Promise<T> {
  const prefix = `bench-presence-${randomBytes(4).toString('hex')}:`
  try {
    return await work(prefix)
  } finally {
    const keys = await admin.keys(`${prefix}*`)
    if (keys.length > 0) await admin.del(...keys)
  }
}

function nodeEnv (prefix: string, id: string): Record<string, string> {
  return { BROKER: 'redis', REDIS_URL: flags.redis, REDIS_PREFIX: prefix, NODE_ID: id, DEMO: 'false', PRESENCE_TTL_MS: '3000' }
}

async function joinLatency (name: ServerName): Promise<unknown> {
  return await withPrefix(async prefix => {
    const server = await ServerProcess.start(name, { cpu: 0, nodeArgs: [], env: nodeEnv(prefix, 'a') })
    const replies = latencyHistogram()
    const peers: BenchPeer[] = []
    try {
      for (let i = 0; i < joins; i++) {
        const peer = await BenchPeer.connect('v1', '127.0.0.1', server.port, () => {}, 'lean')
        peers.push(peer)
        const started = performance.now()
        await peer.join('lobby')
        if (i >= JOIN_WARMUP) replies.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)))
      }
    } finally {
      for (const peer of peers) peer.destroy()
      await server.stop()
    }
    return summarize(replies)
  })
}

async function duringRefresh (name: ServerName): Promise<unknown> {
  return await withPrefix(async prefix => {
    const a = await ServerProcess.start(name, { cpu: 0, nodeArgs: [], env: nodeEnv(prefix, 'a') })
    const b = await ServerProcess.start(name, { cpu: 0, nodeArgs: [], env: nodeEnv(prefix, 'b') })
    const peers: BenchPeer[] = []
    try {
      peers.push(...await connectAll(members, 20, async () => {
        const peer = await BenchPeer.connect('v1', '127.0.0.1', a.port, () => {}, 'lean')
        await peer.join('big')
        return peer
      }, latencyHistogram()))
      const received = latencyHistogram()
      const reader = await BenchPeer.connect('v1', '127.0.0.1', b.port, (_priority, _publisher, _n, sentUs, receivedAt) => {
        received.recordValue(Math.max(1, Math.round((performance.timeOrigin + receivedAt) * 1000 - sentUs)))
      }, 'lean')
      const publisher = await BenchPeer.connect('v1', '127.0.0.1', a.port, () => {}, 'lean')
      peers.push(reader, publisher)
      await reader.join('small')
      await publisher.join('small')
      const slowlogFrom = (await admin.slowlog('GET', 1) as [number][])[0]?.[0] ?? -1
      for (let n = 1; n <= PUBLISHES; n++) {
        publisher.publish('small', benchPayload(2, 0, n, wallUs(), 100), 2)
        await sleep(PUBLISH_EVERY_MS)
      }
      const deadline = performance.now() + 2000
      while (received.totalCount < PUBLISHES && performance.now() < deadline) await sleep(20)
      // The slowlog's entries since the first publish: Redis runs one command at a time.
      const entries = (await admin.slowlog('GET', 1000) as [number, number, number, string[]][]).filter(entry => entry[0] > slowlogFrom)
      const longestMs = entries.reduce((longest, entry) => Math.max(longest, entry[2] / 1000), 0)
      return { ...summarize(received), lost: PUBLISHES - received.totalCount, longestRedisCommandMs: round(longestMs, 2) }
    } finally {
      for (const peer of peers) peer.destroy()
      await Promise.all([a.stop(30_000), b.stop(30_000)])
    }
  })
}

// Commands of 1 ms and more reach the slowlog for this run; the previous threshold is restored after.
const [, threshold] = await admin.config('GET', 'slowlog-log-slower-than') as [string, string]
await admin.config('SET', 'slowlog-log-slower-than', '1000')
let failed = false
try {
  for (let repeat = 1; repeat <= repeats; repeat++) {
    for (const name of servers) {
      console.log(JSON.stringify({ repeat, server: name, workload: 'joins', joins, ms: await joinLatency(name) }))
      const refresh = await duringRefresh(name) as { lost: number }
      console.log(JSON.stringify({ repeat, server: name, workload: 'refresh', members, ms: refresh }))
      if (refresh.lost > 0) failed = true
    }
  }
} finally {
  await admin.config('SET', 'slowlog-log-slower-than', threshold)
  await admin.quit()
}
if (failed) {
  console.error('a publish did not arrive')
  process.exitCode = 1
}
