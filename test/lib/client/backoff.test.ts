import t from 'tap'
import { backoffDelay } from '../../../lib/client/backoff.js'

t.test('backoff grows exponentially to the cap, with full jitter', async t => {
  t.equal(backoffDelay(0, 500, 20_000, () => 0.999), 499)
  t.equal(backoffDelay(3, 500, 20_000, () => 0.999), 3996)
  t.equal(backoffDelay(10, 500, 20_000, () => 0.999), 19_980, 'capped at the maximum')
  t.equal(backoffDelay(5, 500, 20_000, () => 0), 0, 'full jitter reaches down to 0')
  t.equal(backoffDelay(1e9, 500, 20_000, () => 0.5), 10_000, 'a huge attempt count does not overflow')
})
