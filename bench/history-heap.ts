import { parseArgs } from 'node:util'
import { ENTRY_OVERHEAD } from '../lib/engine/memory/history.js'
import { createMemoryEngine } from '../lib/engine/memory/index.js'
import { Hub } from '../lib/node/hub.js'
import { Priority } from '../lib/protocol/priority.js'

/**
 * What the memory history's heap costs, as the hub stores messages: per stream holding one message,
 * and per further kept message, for JSON data of about --payload bytes. These are the figures behind
 * the history's STREAM_OVERHEAD and ENTRY_OVERHEAD, which HISTORY_MAX_BYTES is accounted in.
 *
 *   node --expose-gc --import=tsx bench/history-heap.ts [--payload=1000] [--rooms=2000] [--check]
 *
 * --check exits 1 when a kept message costs more than 5 % above what the history accounts for it,
 * which would let the real memory of history outgrow HISTORY_MAX_BYTES (the 5 % is the measurement's
 * own spread from run to run).
 */
const { values } = parseArgs({
  options: {
    payload: { type: 'string', default: '1000' },
    rooms: { type: 'string', default: '2000' },
    check: { type: 'boolean', default: false }
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

const FROM = 'c1'
const publishToEveryRoom = (round: number): void => {
  for (let r = 0; r < rooms; r++) hub.publish(`room-${r}`, data(round * rooms + r), { priority: Priority.normal, from: FROM })
}

const empty = heapAfterGc()
publishToEveryRoom(0)
const oneEach = heapAfterGc()
for (let round = 1; round <= KEPT; round++) publishToEveryRoom(round)
const full = heapAfterGc()
const dataLength = (JSON.stringify(data(0)) as string).length
const perMessage = Math.round((full - oneEach) / (rooms * KEPT))
const accounted = ENTRY_OVERHEAD + dataLength + FROM.length
console.log(JSON.stringify({
  dataChars: dataLength,
  bytesPerStreamWithOneMessage: Math.round((oneEach - empty) / rooms),
  bytesPerFurtherMessage: perMessage,
  beyondTheData: perMessage - dataLength,
  accountedPerMessage: accounted
}))
if (values.check && perMessage > accounted * 1.05) {
  console.error(`a kept message costs ${perMessage} B of heap, and the history accounts ${accounted} B for it`)
  process.exit(1)
}
