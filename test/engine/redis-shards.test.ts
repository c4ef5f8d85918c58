import { Redis } from 'ioredis'
import t from 'tap'
import { Priority } from '../../lib/protocol/priority.js'
import { testEngine } from '../helpers/engine.js'
import { REDIS_URL, redisPrefix } from '../helpers/redis.js'
import { engineConformance } from './conformance.js'

// Two shards: databases 0 and 1 of the shared Redis stand for two instances (keys apart, pub/sub shared).
const SHARDS = [`${REDIS_URL}/0`, `${REDIS_URL}/1`]

const parts = { broker: 'redis', history: 'redis', presence: 'redis', redisUrls: SHARDS } as const

engineConformance('redis engine, 2 shards', settings => testEngine(parts, settings))

t.test('rooms are spread over the shards, and each room lives on one', async t => {
  const prefix = redisPrefix()
  const engine = await testEngine({ ...parts, redisPrefix: prefix }, { historySize: 100, historyTtlMs: 60_000, idempotencyTtlMs: 60_000 })
  t.teardown(() => engine.close())
  for (let i = 0; i < 40; i++) await engine.publish({ room: `spread-${i}`, data: '1', priority: Priority.normal, ts: 0 })
  const rooms: Set<string>[] = []
  for (const url of SHARDS) {
    const client = new Redis(url)
    t.teardown(() => { client.disconnect() })
    const keys = await client.keys(`${prefix}*:s`)
    rooms.push(new Set(keys.map(key => key.slice(prefix.length + 1, -3))))
  }
  t.ok(rooms[0]!.size >= 8 && rooms[1]!.size >= 8, `both shards hold streams (${rooms[0]!.size} and ${rooms[1]!.size})`)
  t.equal(rooms[0]!.size + rooms[1]!.size, 40, 'each stream on exactly one shard')
  t.same([...rooms[0]!].filter(room => rooms[1]!.has(room)), [])
})
