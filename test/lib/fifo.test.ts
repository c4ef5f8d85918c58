import t from 'tap'
import { Fifo } from '../../lib/fifo.js'

t.test('first in, first out, across a drain and a compaction', async t => {
  const queue = new Fifo<number>()
  t.equal(queue.shift(), undefined)
  for (let i = 0; i < 3000; i++) queue.push(i)
  const taken: number[] = []
  for (let i = 0; i < 2000; i++) taken.push(queue.shift() as number)
  queue.push(3000)
  t.same(taken, Array.from({ length: 2000 }, (_, i) => i))
  t.equal(queue.head, 500, 'compacted once half was shifted: the slots before it are gone')
  t.same(queue.drain(), Array.from({ length: 1001 }, (_, i) => 2000 + i))
  t.equal(queue.shift(), undefined)
  queue.push(7)
  t.equal(queue.shift(), 7)
  t.equal(queue.head, 0, 'an emptied queue starts again at 0')
})
