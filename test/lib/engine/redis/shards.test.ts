import t from 'tap'
import { EngineUnavailableError } from '../../../../lib/engine/errors.js'
import { ShardRing, openShard, run } from '../../../../lib/engine/redis/shards.js'
import { RedisServer } from '../../../helpers/redis-server.js'

const rooms = Array.from({ length: 30_000 }, (_, i) => `room-${i}`)

t.test('rooms spread evenly over the shards', async t => {
  const ring = new ShardRing(['a:6379', 'b:6379', 'c:6379'])
  const counts = [0, 0, 0]
  for (const room of rooms) counts[ring.shardOf(room)]!++
  for (const count of counts) t.ok(count > 8000 && count < 12_000, `a third each, within 20% (${count})`)
  t.equal(new ShardRing(['a:6379']).shardOf('anything'), 0)
})

t.test('a room stays on its shard, and adding a shard moves only the rooms it takes', async t => {
  const three = new ShardRing(['a:6379', 'b:6379', 'c:6379'])
  const again = new ShardRing(['a:6379', 'b:6379', 'c:6379'])
  const four = new ShardRing(['a:6379', 'b:6379', 'c:6379', 'd:6379'])
  let moved = 0
  let unstable = 0
  let betweenOld = 0
  for (const room of rooms) {
    const before = three.shardOf(room)
    const after = four.shardOf(room)
    if (again.shardOf(room) !== before) unstable++
    if (after !== before) {
      moved++
      if (after !== 3) betweenOld++
    }
  }
  t.equal(unstable, 0, 'the same shard list gives the same shard')
  t.equal(betweenOld, 0, 'no room moved between the old shards')
  t.ok(moved > rooms.length * 0.18 && moved < rooms.length * 0.32, `about a quarter moved to the new shard (${moved})`)
})

t.test('a command queued behind an unanswered pipeline is still answered within REDIS_TIMEOUT_MS', async t => {
  const redis = await RedisServer.start(t)
  const admin = redis.client(t)
  const shard = openShard(redis.url, 0, { commandTimeoutMs: 300 })
  t.teardown(() => { shard.command.disconnect(); shard.subscriber.disconnect() })
  await shard.command.connect()
  await admin.set('k', 'v')
  const sleeping = admin.call('DEBUG', 'SLEEP', '0.6')
  // Give the admin's DEBUG SLEEP a head start on the server; the first GET is then written and stalls.
  await new Promise(resolve => setTimeout(resolve, 50))
  const started = Date.now()
  const first = run(shard, () => shard.command.get('k'))
  // The next turn: ioredis queues this one unwritten until the first pipeline is answered.
  await new Promise(resolve => setImmediate(resolve))
  const second = run(shard, () => shard.command.get('k'))
  const outcomes = await Promise.allSettled([first, second])
  const elapsed = Date.now() - started
  for (const outcome of outcomes) {
    t.equal(outcome.status, 'rejected')
    if (outcome.status === 'rejected') t.type(outcome.reason, EngineUnavailableError)
  }
  t.ok(elapsed < 500, `both were answered at the timeout, not when Redis woke or later (${elapsed} ms)`)
  await sleeping
  t.equal(await run(shard, () => shard.command.get('k')), 'v', 'the shard serves again once Redis answers')
})
