import t from 'tap'
import { presenceAcrossReconnect } from '../../../helpers/broker-reconnect.js'
import { testEngine } from '../../../helpers/engine.js'
import { RedisServer } from '../../../helpers/redis-server.js'

t.test('after the subscriber connection first drops, broadcasts and watched rooms\' presence events arrive again, unwatched ones do not', async t => {
  const redis = await RedisServer.start(t)
  const admin = redis.client(t)
  const engine = await testEngine({ broker: 'redis', history: 'redis', presence: 'redis', redisUrls: [redis.url] }, { historySize: 10, historyTtlMs: 60_000, idempotencyTtlMs: 60_000 })
  t.teardown(() => engine.close())
  const { events } = await presenceAcrossReconnect(engine.broker, async () => { await admin.client('KILL', 'TYPE', 'pubsub') }, { broadcasts: true, timeoutMs: 5000 })
  t.same(events.filter(event => event.room === 'quiet'), [], 'a room unwatched before the drop is not subscribed again')
})
