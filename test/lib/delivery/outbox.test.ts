import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createFrame } from '../../../lib/delivery/frame.js'
import { DeliveryStats, OutboxRegistry, PriorityOutbox, type OutboxLimits, type OutboxListeners } from '../../../lib/delivery/outbox.js'
import { BUSY_WITHIN_MS, WritePump } from '../../../lib/delivery/write-pump.js'
import { Priority, type Priority as PriorityLevel } from '../../../lib/protocol/priority.js'
import { FakeSink, turn } from '../../helpers/fake-sink.js'

/** Listeners for tests that look at what was written, not at what was dropped. */
const ignore: OutboxListeners = { slowConsumer () {}, dropped () {} }

const roomy: OutboxLimits = { maxMessages: 1000, maxBytes: 1 << 20, writeBatch: 1000, writeHighWater: 1 << 20 }

function setup (limits: Partial<OutboxLimits> = {}) {
  const sink = new FakeSink()
  const stats = new DeliveryStats()
  let slowConsumer = 0
  const dropped: [number, string][] = []
  const outbox = new PriorityOutbox(sink, new WritePump(), { ...roomy, ...limits }, stats, { slowConsumer: () => { slowConsumer++ }, dropped: (frame, reason) => { dropped.push([frame.seq, reason]) } })
  return { sink, stats, outbox, dropped, slowConsumers: () => slowConsumer }
}

function frame (label: string, priority: PriorityLevel, ttlMs = 0, key?: string) {
  return createFrame(JSON.stringify({ label }), priority, ttlMs, key)
}

function labels (sink: FakeSink): string[] {
  return sink.messages().map(m => (m as { label: string }).label)
}

t.test('drains the highest priority first, FIFO within a level', async t => {
  const { sink, outbox } = setup()
  outbox.enqueue(frame('low-1', Priority.low))
  outbox.enqueue(frame('normal-1', Priority.normal))
  outbox.enqueue(frame('high-1', Priority.high))
  outbox.enqueue(frame('critical-1', Priority.critical))
  outbox.enqueue(frame('low-2', Priority.low))
  outbox.enqueue(frame('critical-2', Priority.critical))
  t.same(sink.writes, [], 'nothing is written synchronously')
  await turn()
  t.same(labels(sink), ['critical-1', 'critical-2', 'high-1', 'normal-1', 'low-1', 'low-2'])
  t.equal(outbox.length, 0)
})

t.test('coalesces every frame queued in one turn into one write', async t => {
  const { sink, outbox, stats } = setup()
  for (let i = 0; i < 10; i++) outbox.enqueue(frame(`m${i}`, Priority.normal))
  await turn()
  t.same(sink.batches, [10], 'one flush, ten frames')
  t.equal(stats.sent[Priority.normal], 10)
  t.equal(stats.outboxWaitSeconds.count, 10, 'every write observed in the wait histogram')
})

t.test('a batch of large frames goes out as one vectored write, the frames not copied', async t => {
  const { sink, outbox } = setup()
  const big = (label: string) => createFrame(JSON.stringify({ label, pad: 'x'.repeat(3000) }), Priority.normal)
  const frames = [big('a'), big('b'), big('c')]
  for (const f of frames) outbox.enqueue(f)
  await turn()
  t.same(sink.batches, [3], 'one corked write of three frames')
  t.ok(frames.every((f, i) => sink.calls[i] === f.bytes), 'the shared frame buffers themselves were written')
  t.same(labels(sink), ['a', 'b', 'c'])
})

t.test('writes at most writeBatch frames per flush and continues next turn', async t => {
  const { sink, outbox } = setup({ writeBatch: 3 })
  for (let i = 0; i < 7; i++) outbox.enqueue(frame(`m${i}`, Priority.normal))
  await turn()
  t.same(sink.batches, [3])
  await turn(2)
  t.same(sink.batches, [3, 3, 1])
  t.same(labels(sink), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6'])
})

t.test('a long queue keeps FIFO order through compaction, frames added while it drains, and reuse once empty', async t => {
  const { sink, outbox } = setup({ writeBatch: 250, maxMessages: 10_000 })
  const expected: string[] = []
  const add = (label: string): void => {
    outbox.enqueue(frame(label, Priority.normal))
    expected.push(label)
  }
  for (let i = 0; i < 3000; i++) add(`a${i}`)
  // Past 1024 sent, half of the queue is behind its head: it is compacted while frames keep coming.
  for (let turns = 0; turns < 8; turns++) {
    await turn()
    for (let i = 0; i < 20; i++) add(`b${turns}-${i}`)
  }
  await turn(12)
  t.equal(outbox.length, 0, 'drained')
  for (let round = 0; round < 3; round++) {
    add(`c${round}-0`)
    add(`c${round}-1`)
    await turn()
  }
  t.same(labels(sink), expected, 'every frame once, in the order queued')
})

t.test('a quiet pump writes at the end of the producing callback; right after a flush it waits for the end of the turn', async t => {
  let clock = 100
  const sink = new FakeSink()
  const outbox = new PriorityOutbox(sink, new WritePump(() => clock), roomy, new DeliveryStats(), ignore)
  outbox.enqueue(frame('a', Priority.normal))
  outbox.enqueue(frame('b', Priority.normal))
  t.same(sink.writes, [], 'nothing is written synchronously')
  await Promise.resolve()
  t.same(sink.batches, [2], 'written in a microtask, both frames in one write')
  clock += BUSY_WITHIN_MS / 2
  outbox.enqueue(frame('c', Priority.normal))
  await Promise.resolve()
  t.same(sink.batches, [2], 'a frame queued just after a flush is not written in a microtask')
  await turn()
  t.same(sink.batches, [2, 1], 'it goes out in the check phase of the turn')
  clock += BUSY_WITHIN_MS
  outbox.enqueue(frame('d', Priority.normal))
  await Promise.resolve()
  t.same(sink.batches, [2, 1, 1], 'once the pump was quiet for BUSY_WITHIN_MS, a microtask again')
  t.same(labels(sink), ['a', 'b', 'c', 'd'])
})

t.test('flushQuiet writes what a quiet pump queued at once, and leaves a busy pump coalescing', async t => {
  let clock = 100
  const sink = new FakeSink()
  const pump = new WritePump(() => clock)
  const outbox = new PriorityOutbox(sink, pump, roomy, new DeliveryStats(), ignore)
  outbox.enqueue(frame('a', Priority.normal))
  outbox.enqueue(frame('b', Priority.normal))
  pump.flushQuiet()
  t.same(sink.batches, [2], 'written synchronously, both frames in one write')
  await Promise.resolve()
  t.same(sink.batches, [2], 'the microtask it replaced writes nothing more')
  clock += BUSY_WITHIN_MS / 2
  outbox.enqueue(frame('c', Priority.normal))
  pump.flushQuiet()
  t.same(sink.batches, [2], 'right after a flush the frame waits for the end of the turn')
  await turn()
  t.same(sink.batches, [2, 1])
  clock += BUSY_WITHIN_MS
  pump.flushQuiet()
  t.same(sink.batches, [2, 1], 'with nothing queued it writes nothing')
  t.same(labels(sink), ['a', 'b', 'c'])
})

t.test('on a quiet pump a live frame for a socket with nothing waiting is written at once, the rest of the callback coalesces', async t => {
  let clock = 100
  const pump = new WritePump(() => clock)
  const stats = new DeliveryStats()
  const [publisher, member, backed] = [new FakeSink(), new FakeSink(), new FakeSink()]
  const [own, other, full] = [publisher, member, backed].map(sink => new PriorityOutbox(sink, pump, roomy, stats, ignore)) as [PriorityOutbox, PriorityOutbox, PriorityOutbox]
  backed.writableLength = 10
  own.enqueueLive(frame('message', Priority.normal))
  other.enqueueLive(frame('message', Priority.normal))
  full.enqueueLive(frame('message', Priority.normal))
  t.same([publisher.batches, member.batches], [[1], [1]], 'both members written during the fan-out')
  t.same(backed.writes, [], 'a socket with bytes buffered waits for the pump')
  own.enqueue(frame('reply', Priority.critical))
  own.enqueueLive(frame('second', Priority.normal))
  t.same(publisher.batches, [1], 'one write at once per socket and callback')
  pump.flushQuiet()
  t.same(publisher.batches, [1, 2], 'the rest of the callback in one write, in priority order')
  t.same(labels(publisher), ['message', 'reply', 'second'])
  t.same(backed.batches, [1])
  t.equal(stats.sent[Priority.normal], 4, 'every frame counted as sent')
  t.equal(stats.outboxWaitSeconds.count, 5, 'and observed in the wait histogram')
  for (const sink of [publisher, member, backed]) sink.release()
  clock += BUSY_WITHIN_MS / 2
  other.enqueueLive(frame('soon after', Priority.normal))
  t.same(member.batches, [1], 'right after the callback the pump is busy: queued')
  await turn()
  t.same(member.batches, [1, 1], 'and written in the check phase')
  member.release()
  clock += BUSY_WITHIN_MS
  other.enqueueLive(frame('quiet again', Priority.normal))
  t.same(member.batches, [1, 1, 1], 'quiet again: at once')
  await Promise.resolve()
  member.release()
  other.enqueueLive(frame('next callback', Priority.normal))
  t.same(member.batches, [1, 1, 1], 'the callback ended with a write: the next one right after coalesces')
  await turn()
  t.same(labels(member), ['message', 'soon after', 'quiet again', 'next callback'])
})

t.test('a live frame queues behind what its outbox holds, and one that does not fit is dropped as enqueue drops it', async t => {
  const { sink, outbox, stats } = setup({ maxBytes: 100 })
  outbox.enqueue(frame('queued', Priority.low))
  outbox.enqueueLive(frame('live', Priority.low))
  t.same(sink.writes, [], 'nothing overtakes the queued frame')
  await Promise.resolve()
  t.same(labels(sink), ['queued', 'live'])
  sink.release()
  await turn()
  const { sink: other, outbox: small, stats: otherStats } = setup({ maxBytes: 100 })
  t.notOk(small.enqueueLive(createFrame(JSON.stringify({ label: 'big', pad: 'x'.repeat(200) }), Priority.normal)))
  t.equal(otherStats.dropped.queue_full[Priority.normal], 1, 'counted as queue_full')
  t.same(other.writes, [])
  t.equal(stats.sent[Priority.low], 2)
})

t.test('a quiet fan-out writes at once for one slice, and the pump writes the rest in its own slices', async t => {
  let clock = 100
  const pump = new WritePump(() => clock)
  const sinks = Array.from({ length: 40 }, () => new FakeSink())
  const outboxes = sinks.map(sink => new PriorityOutbox(sink, pump, roomy, new DeliveryStats(), ignore))
  const shared = frame('m', Priority.normal)
  outboxes.forEach((outbox, i) => {
    // Each write takes 0.1 ms of the clock: the slice ends after 10.
    if (sinks[i - 1]?.writes.length === 1) clock += 0.1
    outbox.enqueueLive(shared)
  })
  const atOnce = sinks.filter(sink => sink.writes.length === 1).length
  t.ok(atOnce >= 10 && atOnce <= 10 + 8, `${atOnce} of 40 written during the fan-out`)
  t.ok(sinks.slice(0, atOnce).every(sink => sink.writes.length === 1), 'the first ones, in order')
  await turn(4)
  t.same(sinks.map(sink => sink.batches), sinks.map(() => [1]), 'every socket got it once')
})

t.test('a pass longer than a slice lets the loop read, and a frame queued meanwhile joins the outboxes not yet written', async t => {
  // Each write takes 0.2 ms, so a pass over 40 outboxes needs several slices of SWEEP_SLICE_MS.
  class SlowSink extends FakeSink {
    override write (chunk: Buffer, callback?: (error?: Error | null) => void): boolean {
      const until = performance.now() + 0.2
      while (performance.now() < until);
      return super.write(chunk, callback)
    }
  }
  const pump = new WritePump()
  const stats = new DeliveryStats()
  const sinks = Array.from({ length: 40 }, () => new SlowSink())
  const outboxes = sinks.map(sink => new PriorityOutbox(sink, pump, roomy, stats, ignore))
  for (const outbox of outboxes) outbox.enqueue(frame('a', Priority.normal))
  await turn()
  const writtenInFirstSlice = sinks.filter(sink => sink.writes.length > 0).length
  t.ok(writtenInFirstSlice > 0 && writtenInFirstSlice < 40, `the first slice wrote ${writtenInFirstSlice} of 40 and yielded`)
  t.ok(sinks.slice(0, writtenInFirstSlice).every(sink => sink.writes.length === 1), 'in order')
  for (const outbox of outboxes) outbox.enqueue(frame('b', Priority.normal))
  await turn(40)
  t.same(sinks.map(labels), sinks.map(() => ['a', 'b']), 'every outbox got a then b')
  t.same(sinks.slice(0, writtenInFirstSlice).map(sink => sink.batches), sinks.slice(0, writtenInFirstSlice).map(() => [1, 1]), 'written before b: b goes in the next pass')
  t.same(sinks.slice(writtenInFirstSlice).map(sink => sink.batches), sinks.slice(writtenInFirstSlice).map(() => [2]), 'not yet written: a and b in one write')
})

t.test('a full queue evicts the oldest message of the lowest level first', async t => {
  const { sink, outbox, stats } = setup({ maxMessages: 3 })
  outbox.enqueue(frame('low-1', Priority.low))
  outbox.enqueue(frame('normal-1', Priority.normal))
  outbox.enqueue(frame('low-2', Priority.low))
  t.ok(outbox.enqueue(frame('high-1', Priority.high)))
  t.equal(stats.dropped.evicted[Priority.low], 1)
  t.ok(outbox.enqueue(frame('high-2', Priority.high)))
  t.equal(stats.dropped.evicted[Priority.low], 2)
  t.ok(outbox.enqueue(frame('critical', Priority.critical)))
  t.equal(stats.dropped.evicted[Priority.normal], 1, 'then the next level up')
  await turn()
  t.same(labels(sink), ['critical', 'high-1', 'high-2'])
})

t.test('an incoming message with nothing lower to evict is dropped and counted', async t => {
  const { sink, outbox, stats, slowConsumers } = setup({ maxMessages: 2 })
  outbox.enqueue(frame('high-1', Priority.high))
  outbox.enqueue(frame('high-2', Priority.high))
  t.notOk(outbox.enqueue(frame('normal', Priority.normal)))
  t.notOk(outbox.enqueue(frame('high-3', Priority.high)), 'same level does not evict')
  t.equal(stats.dropped.queue_full[Priority.normal], 1)
  t.equal(stats.dropped.queue_full[Priority.high], 1)
  t.equal(slowConsumers(), 0)
  await turn()
  t.same(labels(sink), ['high-1', 'high-2'])
})

t.test('a critical message that cannot be queued disconnects the slow consumer', async t => {
  const { sink, outbox, stats, slowConsumers } = setup({ maxMessages: 2 })
  outbox.enqueue(frame('critical-1', Priority.critical))
  outbox.enqueue(frame('critical-2', Priority.critical))
  t.notOk(outbox.enqueue(frame('critical-3', Priority.critical)))
  t.equal(slowConsumers(), 1)
  t.equal(stats.slowConsumerDisconnects, 1)
  t.equal(stats.dropped.queue_full[Priority.critical], 1, 'the message that did not fit')
  t.equal(stats.dropped.closed[Priority.critical], 2, 'the ones the closed connection will never get')
  t.ok(outbox.isClosed)
  t.notOk(outbox.enqueue(frame('late', Priority.low)))
  t.equal(stats.dropped.closed[Priority.low], 1)
  await turn()
  t.same(sink.writes, [], 'nothing is written after the disconnect')
})

t.test('the byte bound applies across levels, and eviction only happens when it makes room', async t => {
  const big = 'x'.repeat(400)
  const bigFrame = (label: string, p: PriorityLevel) => createFrame(JSON.stringify({ label, big }), p)
  const size = bigFrame('low-1', Priority.low).bytes.length
  const { sink, outbox, stats } = setup({ maxBytes: size * 2 + 10 })
  outbox.enqueue(bigFrame('low-1', Priority.low))
  outbox.enqueue(bigFrame('low-2', Priority.low))
  t.equal(outbox.bytes, size * 2)
  t.ok(outbox.enqueue(bigFrame('normal', Priority.normal)))
  t.equal(stats.dropped.evicted[Priority.low], 1)
  const huge = createFrame(JSON.stringify({ label: 'huge', big: big.repeat(5) }), Priority.high)
  t.notOk(outbox.enqueue(huge), 'larger than the whole bound')
  t.equal(stats.dropped.evicted[Priority.low], 1, 'nothing was evicted for a message that could never fit')
  t.equal(stats.dropped.queue_full[Priority.high], 1)
  await turn()
  t.same(labels(sink), ['normal', 'low-2'])
})

t.test('a message past its ttl is dropped as expired instead of delivered late', async t => {
  const { sink, outbox, stats } = setup({ writeHighWater: 1024 })
  sink.writableLength = 4096 // the socket is backed up
  outbox.enqueue(frame('stale', Priority.normal, 20))
  outbox.enqueue(frame('fresh', Priority.normal))
  await turn()
  t.same(labels(sink), [])
  await sleep(40)
  sink.release()
  await turn()
  t.same(labels(sink), ['fresh'])
  t.equal(stats.dropped.expired[Priority.normal], 1)
  t.equal(stats.sent[Priority.normal], 1)
})

t.test('a lone frame is written as soon as the socket takes it, and dropped if its ttl ran out first', async t => {
  const { sink, outbox, stats } = setup({ writeHighWater: 1024 })
  outbox.enqueue(frame('one', Priority.normal))
  await outbox.whenEmpty()
  t.same(labels(sink), ['one'])
  sink.writableLength = 4096 // the socket is backed up
  outbox.enqueue(frame('stale', Priority.normal, 20))
  await sleep(40)
  sink.release()
  await outbox.whenEmpty()
  t.same(labels(sink), ['one'], 'not delivered late')
  t.equal(stats.dropped.expired[Priority.normal], 1)
  t.equal(stats.sent[Priority.normal], 1)
})

t.test('a newer message with the same key supersedes the queued one', async t => {
  const { sink, outbox, stats } = setup()
  outbox.enqueue(frame('price-1', Priority.normal, 0, 'room\u0000BTC'))
  outbox.enqueue(frame('other', Priority.normal, 0, 'room\u0000ETH'))
  outbox.enqueue(frame('price-2', Priority.normal, 0, 'room\u0000BTC'))
  outbox.enqueue(frame('price-3', Priority.high, 0, 'room\u0000BTC'))
  t.equal(outbox.length, 2)
  t.equal(stats.dropped.superseded[Priority.normal], 2)
  await turn()
  t.same(labels(sink), ['price-3', 'other'])
  outbox.enqueue(frame('price-4', Priority.normal, 0, 'room\u0000BTC'))
  await turn()
  t.same(labels(sink), ['price-3', 'other', 'price-4'], 'a key that was already sent does not hold back the next value')
})

t.test('backpressure: stops at the high-water mark and lets priority pick again when the socket drains', async t => {
  const sample = frame('n0', Priority.normal).bytes.length
  const { sink, outbox } = setup({ writeHighWater: sample * 2 })
  for (let i = 0; i < 5; i++) outbox.enqueue(frame(`n${i}`, Priority.normal))
  await turn(3)
  t.same(labels(sink), ['n0', 'n1'], 'two frames fill the socket buffer')
  outbox.enqueue(frame('urgent', Priority.critical))
  await turn(3)
  t.same(labels(sink), ['n0', 'n1'], 'nothing more is written while the socket is full')
  sink.release()
  await turn(2)
  t.same(labels(sink), ['n0', 'n1', 'urgent', 'n2'], 'the critical message overtook the waiting ones')
  sink.release()
  await turn(2)
  t.same(labels(sink), ['n0', 'n1', 'urgent', 'n2', 'n3', 'n4'])
})

t.test('waits for the socket when it is already full before the first write', async t => {
  const { sink, outbox } = setup({ writeHighWater: 1024 })
  sink.writableLength = 2048
  outbox.enqueue(frame('a', Priority.normal))
  await turn(2)
  t.same(labels(sink), [])
  sink.release()
  await turn(2)
  t.same(labels(sink), ['a'])
})

t.test('an ended socket gets no more writes', async t => {
  const { outbox, sink } = setup()
  sink.writable = false
  outbox.enqueue(frame('late', Priority.critical))
  await turn(2)
  t.same(sink.writes, [])
  t.equal(outbox.length, 1, 'it stays queued until the connection is released')
})

t.test('whenEmpty resolves once everything queued reached the socket', async t => {
  const { outbox, sink } = setup({ writeBatch: 2 })
  t.equal(await Promise.race([outbox.whenEmpty(), 'pending']), undefined, 'resolves at once when empty')
  for (let i = 0; i < 5; i++) outbox.enqueue(frame(`m${i}`, Priority.critical))
  await outbox.whenEmpty()
  t.equal(labels(sink).length, 5)
})

t.test('close drops what is queued with reason closed and wakes waiters', async t => {
  const { outbox, stats } = setup()
  outbox.enqueue(frame('a', Priority.normal))
  outbox.enqueue(frame('b', Priority.low, 0, 'k'))
  const empty = outbox.whenEmpty()
  outbox.close()
  await empty
  t.equal(stats.dropped.closed[Priority.normal], 1)
  t.equal(stats.dropped.closed[Priority.low], 1)
  t.equal(outbox.length, 0)
  outbox.close()
  t.equal(stats.dropped.closed[Priority.normal], 1, 'closing twice counts nothing twice')
})

t.test('a write error leaves the outbox waiting for close instead of spinning', async t => {
  const { outbox, sink } = setup({ writeHighWater: 10 })
  outbox.enqueue(frame('a', Priority.normal))
  outbox.enqueue(frame('b', Priority.normal))
  await turn()
  t.equal(labels(sink).length, 1)
  const failing = sink as unknown as { callbacks: ((error?: Error | null) => void)[] }
  for (const callback of failing.callbacks) callback(new Error('EPIPE'))
  await turn(2)
  t.equal(labels(sink).length, 1)
})

t.test('registry tracks live outboxes, sums queues and releases them', async t => {
  const registry = new OutboxRegistry(roomy)
  const a = registry.create(new FakeSink(), ignore)
  const b = registry.create(new FakeSink(), ignore)
  a.enqueue(frame('1', Priority.normal))
  b.enqueue(frame('2', Priority.normal))
  b.enqueue(frame('3', Priority.normal))
  t.equal(registry.queuedMessages(), 3)
  await registry.whenAllEmpty()
  t.equal(registry.queuedMessages(), 0)
  t.equal(registry.stats.sent[Priority.normal], 3, 'one counter set for the whole app')
  registry.release(a)
  t.equal(registry.live.size, 1)
  t.ok(a.isClosed)
})

t.test('one frame object is shared by every outbox it is queued in', async t => {
  const registry = new OutboxRegistry(roomy)
  const sinks = [new FakeSink(), new FakeSink(), new FakeSink()]
  const outboxes = sinks.map(sink => registry.create(sink, ignore))
  const shared = frame('fan-out', Priority.normal)
  for (const outbox of outboxes) outbox.enqueue(shared)
  await turn()
  for (const sink of sinks) t.equal(sink.writes[0], shared.bytes, 'the very same Buffer, written without a copy')
})

t.test('room messages that are dropped are reported with their seq and reason; closing reports nothing', async t => {
  const { outbox, dropped } = setup({ maxMessages: 2 })
  const message = (seq: number, priority: PriorityLevel, key?: string) => createFrame(JSON.stringify({ seq }), priority, 0, key, 'room', seq)
  outbox.enqueue(message(1, Priority.low))
  outbox.enqueue(message(2, Priority.normal, 'k'))
  outbox.enqueue(message(3, Priority.normal, 'k'))
  outbox.enqueue(message(4, Priority.high))
  outbox.enqueue(message(5, Priority.low))
  outbox.enqueue(frame('not a room message', Priority.low))
  t.same(dropped, [[2, 'superseded'], [1, 'evicted'], [5, 'queue_full']])
  outbox.close()
  t.equal(dropped.length, 3, 'what is dropped at close has no one left to tell')
})

t.test('replaceQueued swaps a frame that still waits, and refuses one already written', async t => {
  const { sink, outbox } = setup()
  const first = frame('report-1', Priority.critical)
  outbox.enqueue(first)
  outbox.enqueue(frame('after', Priority.critical))
  const bigger = frame('report-1-and-2', Priority.critical)
  t.ok(outbox.replaceQueued(first, bigger))
  t.equal(outbox.bytes, bigger.bytes.length + frame('after', Priority.critical).bytes.length, 'the byte count follows the new size')
  await turn()
  t.same(labels(sink), ['report-1-and-2', 'after'], 'in the place of the old one')
  t.notOk(outbox.replaceQueued(bigger, frame('too late', Priority.critical)), 'written frames cannot be replaced')
})
