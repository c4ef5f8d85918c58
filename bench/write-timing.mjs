import net from 'node:net'

/**
 * Preloaded into a server by `paired.ts --write-timing` (node --import): for every chunk a socket
 * reads, the time from its 'data' event to the first socket write after it and to the
 * WRITE_TIMING_WRITES-th. A publish in turns is one chunk followed by one write per member, so this is
 * the server's own share of a delivery's latency, whatever library the server is built on. SIGWINCH
 * starts the measurement over (at the end of the warm-up; SIGUSR2 would shut Switchboard down, as
 * close-with-grace does on it); SIGTERM prints the medians to stderr.
 */
const writesPerChunk = Number(process.env.WRITE_TIMING_WRITES)
if (!Number.isInteger(writesPerChunk) || writesPerChunk < 1) throw new Error('set WRITE_TIMING_WRITES to the writes that follow one chunk')

/** @type {{ emit: (event: string | symbol, ...args: unknown[]) => boolean, _writeGeneric: (...args: unknown[]) => unknown }} */
const proto = /** @type {any} */ (net.Socket.prototype)
const { emit, _writeGeneric: writeGeneric } = proto
let readAt = 0
let writes = 0
let firstAt = 0
let lastAt = 0
/** @type {number[]} */
let toFirst = []
/** @type {number[]} */
let toLast = []

proto.emit = function (event, ...args) {
  if (event === 'data') {
    // The previous chunk is complete once the next one arrives.
    if (writes >= writesPerChunk) {
      toFirst.push(firstAt - readAt)
      toLast.push(lastAt - readAt)
    }
    readAt = performance.now()
    writes = 0
  }
  return emit.call(this, event, ...args)
}

// Every write and writev of a net.Socket goes through _writeGeneric once, corked or not.
proto._writeGeneric = function (...args) {
  const result = writeGeneric.apply(this, args)
  const now = performance.now()
  if (++writes === 1) firstAt = now
  if (writes === writesPerChunk) lastAt = now
  return result
}

/** @param {number[]} values */
const medianUs = values => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted[Math.floor((sorted.length - 1) / 2)]
  return middle === undefined ? NaN : Math.round(middle * 10_000) / 10
}

process.on('SIGWINCH', () => {
  toFirst = []
  toLast = []
})
process.prependListener('SIGTERM', () => {
  process.stderr.write(`write-timing ${JSON.stringify({ chunks: toLast.length, firstUs: medianUs(toFirst), lastUs: medianUs(toLast) })}\n`)
})
