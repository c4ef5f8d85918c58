import { parseArgs } from 'node:util'
import { createMemoryEngine } from '../lib/engine/memory/index.js'
import { Hub } from '../lib/node/hub.js'
import { Priority } from '../lib/protocol/priority.js'

/**
 * What the memory history's heap costs, as the hub stores messages: per stream holding one message,
 * and per further kept message, for JSON data of about --payload bytes. These are the figures behind
 * the history's STREAM_OVERHEAD and ENTRY_OVERHEAD, which HISTORY_MAX_BYTES is accounted in.
 *
 *   node --expose-gc --import=tsx bench/history-heap.ts [--payload=1000] [--rooms=2000]
 */
const { values } = parseArgs({
  options: {
    payload: { type: 'string', default: '1000' },
    rooms: { type: 'string', default: '2000' }
  }
})
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  console.error('run with node --expose-gc')
  process.exit(2)
}
const payloadBytes = Number(values.payload)
const rooms = Number(values.rooms)
if (!Number.isInteger(payloadBytes) || payloadBytes < 1 || !Number.isInteger(rooms) || rooms < 1) {
  console.error('--payload and --rooms take positive whole numbers')
  process.exit(2)
}
const KEPT = 100

const hub = new Hub(createMemoryEngine({ size: KEPT + 1, ttlMs: 3_600_000, maxBytes: 2 ** 40, idempotencyTtlMs: 60_000 }), { recoveryMax: 1000 })
// A distinct object each time, as JSON.parse gives the hub a new one for every client frame.
const data = (n: number): unknown => ({ n, text: 'x'.repeat(payloadBytes) })
const heapAfterGc = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const publishToEveryRoom = (round: number): void => {
  for (let r = 0; r < rooms; r++) hub.publish(`room-${r}`, data(round * rooms + r), { priority: Priority.normal, from: 'c1' })
}

const empty = heapAfterGc()
publishToEveryRoom(0)
const oneEach = heapAfterGc()
for (let round = 1; round <= KEPT; round++) publishToEveryRoom(round)
const full = heapAfterGc()
const dataLength = (JSON.stringify(data(0)) as string).length
console.log(JSON.stringify({
  dataChars: dataLength,
  bytesPerStreamWithOneMessage: Math.round((oneEach - empty) / rooms),
  bytesPerFurtherMessage: Math.round((full - oneEach) / (rooms * KEPT)),
  beyondTheData: Math.round((full - oneEach) / (rooms * KEPT)) - dataLength
}))
