import t from 'tap'
import { MemoryHistory } from '../../../../lib/engine/memory/history.js'
import { Priority } from '../../../../lib/protocol/priority.js'

function publish (history: MemoryHistory, room: string, data = '"x"'): number {
  return history.append({ room, data, priority: Priority.normal, ts: Date.now() }).publication.seq
}

t.test('over HISTORY_MAX_BYTES the least recently published streams go first, and come back with a new epoch', async t => {
  const history = new MemoryHistory({ size: 100, ttlMs: 60_000, maxBytes: 64 * 1024, idempotencyTtlMs: 1000 })
  t.teardown(() => history.close())
  const epochs = new Map<string, string>()
  for (const room of ['a', 'b', 'c']) {
    epochs.set(room, history.position(room).epoch)
    for (let i = 0; i < 10; i++) publish(history, room, JSON.stringify('y'.repeat(500)))
  }
  publish(history, 'a')
  const before = history.stats()
  t.equal(before.streams, 3)
  // Fill far past the bound from one more stream: b (the least recently published) goes first, then c.
  for (let i = 0; i < 200; i++) publish(history, 'd', JSON.stringify('z'.repeat(500)))
  const after = history.stats()
  t.ok(after.bytes <= 64 * 1024, `${after.bytes} bytes kept, bound 65536`)
  t.ok(after.evictedStreams >= 2, `${after.evictedStreams} streams evicted`)
  t.equal(history.position('d').seq, 200, 'the stream in use keeps its seq, with fewer messages kept')
  t.not(history.position('b').epoch, epochs.get('b'), 'b lost its history, so its epoch changed')
})

t.test('a storm over 100k rooms stays within the bound', async t => {
  const maxBytes = 8 * 1024 * 1024
  const history = new MemoryHistory({ size: 256, ttlMs: 60_000, maxBytes, idempotencyTtlMs: 60_000 })
  t.teardown(() => history.close())
  const data = JSON.stringify({ text: 'hello from a storm', n: 1 })
  let peak = 0
  for (let i = 0; i < 100_000; i++) {
    history.append({ room: `room-${i}`, data, priority: Priority.normal, ts: Date.now(), id: `id-${i}` })
    if (i % 1000 === 0) peak = Math.max(peak, history.stats().bytes)
  }
  const stats = history.stats()
  t.ok(Math.max(peak, stats.bytes) <= maxBytes, `peak ${peak} bytes, bound ${maxBytes}`)
  t.ok(stats.streams < 100_000, `${stats.streams} streams kept`)
  t.ok(stats.evictedStreams > 0)
  t.equal(stats.messages, stats.streams, 'one message per stream kept')
})

t.test('a room namespace can set its own history size and ttl', async t => {
  const history = new MemoryHistory({
    size: 100,
    ttlMs: 60_000,
    maxBytes: 1 << 26,
    idempotencyTtlMs: 1000,
    limitsFor: room => room.startsWith('small:') ? { size: 3, ttlMs: 1000 } : undefined
  })
  t.teardown(() => history.close())
  for (let i = 0; i < 10; i++) {
    publish(history, 'small:a')
    publish(history, 'big')
  }
  t.same(history.read('small:a', { limit: 100 }).publications.map(p => p.seq), [8, 9, 10])
  t.equal(history.read('big', { limit: 100 }).publications.length, 10)
})
