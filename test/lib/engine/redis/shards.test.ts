import t from 'tap'
import { ShardRing } from '../../../../lib/engine/redis/shards.js'

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
