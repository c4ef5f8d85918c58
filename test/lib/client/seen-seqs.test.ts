import t from 'tap'
import { SeenSeqs } from '../../../lib/client/seen-seqs.js'

t.test('each seq is seen once, out of order too, and the watermark follows the contiguous part', async t => {
  const seen = new SeenSeqs(10)
  t.equal(seen.mark(10), false, 'at or below the start is old')
  t.equal(seen.mark(12), true)
  t.equal(seen.watermark, 10, '11 is still missing')
  t.equal(seen.mark(12), false, 'a duplicate')
  t.equal(seen.mark(11), true)
  t.equal(seen.watermark, 12)
  t.ok(seen.has(12))
  t.notOk(seen.has(13))
  seen.reset(0)
  t.equal(seen.mark(1), true, 'after a reset, seqs start again')
})
