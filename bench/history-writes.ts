import { execSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { PostgresHistory } from '../lib/engine/postgres/history.js'
import { Priority } from '../lib/protocol/priority.js'
import { sampleProcess } from './server-process.js'
import { median, round } from './stats.js'

const USAGE = `Usage: node --import=tsx bench/history-writes.ts [options]
  --rooms=100         rooms written to, round robin
  --inflight=2000     appends waiting at any time (what many connections publishing at once amount to)
  --duration=5        measured seconds per run (after 2 s of the same load)
  --repeats=3
  --payload=100       bytes of JSON data per message
  --smoke             1 s, 1 run
The PostgreSQL write path alone (HISTORY=postgres, no broker, no WebSocket): appends/s, and the CPU that
this process and the database's processes spent per append.`

const { values: flags } = parseArgs({
  options: {
    rooms: { type: 'string', default: '100' },
    inflight: { type: 'string', default: '2000' },
    duration: { type: 'string', default: '5' },
    repeats: { type: 'string', default: '3' },
    payload: { type: 'string', default: '100' },
    smoke: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log(USAGE)
  process.exit(0)
}
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const rooms = Number(flags.rooms)
const inflight = Number(flags.inflight)
const durationMs = (flags.smoke ? 1 : Number(flags.duration)) * 1000
const repeats = flags.smoke ? 1 : Number(flags.repeats)
const data = JSON.stringify({ text: 'x'.repeat(Math.max(0, Number(flags.payload) - 12)) })

/** CPU seconds of every PostgreSQL process (the server runs as several). */
function postgresCpu (): number {
  const pids = execSync('pgrep -x postgres || true').toString().split('\n').filter(line => line !== '').map(Number)
  return pids.reduce((sum, pid) => {
    try { return sum + sampleProcess(pid).cpuSeconds } catch { return sum }
  }, 0)
}

const results: { appendsPerSec: number, nodeCpuUs: number, postgresCpuUs: number }[] = []
for (let run = 0; run < repeats; run++) {
  const schema = `bench_${randomBytes(4).toString('hex')}`
  const history = await PostgresHistory.open({ databaseUrl, schema, timeoutMs: 10_000, size: 256, ttlMs: 300_000, idempotencyTtlMs: 300_000 })
  try {
    let appended = 0
    let next = 0
    let stopAt = performance.now() + 2000
    const worker = async (): Promise<void> => {
      while (performance.now() < stopAt) {
        await history.append({ room: `room-${next++ % rooms}`, data, priority: Priority.normal, ts: Date.now() })
        appended++
      }
    }
    await Promise.all(Array.from({ length: inflight }, worker))
    appended = 0
    const cpu = process.cpuUsage()
    const database = postgresCpu()
    const started = performance.now()
    stopAt = started + durationMs
    await Promise.all(Array.from({ length: inflight }, worker))
    const seconds = (performance.now() - started) / 1000
    const used = process.cpuUsage(cpu)
    const result = {
      appendsPerSec: Math.round(appended / seconds),
      nodeCpuUs: round((used.user + used.system) / appended, 1),
      postgresCpuUs: round((postgresCpu() - database) * 1e6 / appended, 1)
    }
    results.push(result)
    console.log(JSON.stringify({ run, rooms, inflight, ...result }))
  } finally {
    await history.close()
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    await client.query(`DROP SCHEMA ${schema} CASCADE`)
    await client.end()
  }
}
const spread = (values: number[]): string => `${round(median(values), 1)} (${round(Math.min(...values), 1)}–${round(Math.max(...values), 1)})`
console.log(`appends/s ${spread(results.map(r => r.appendsPerSec))}; CPU per append: this process ${spread(results.map(r => r.nodeCpuUs))} µs, PostgreSQL ${spread(results.map(r => r.postgresCpuUs))} µs`)
