import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { PresenceEvent } from '../../../../lib/engine/types.js'
import { testEngine } from '../../../helpers/engine.js'
import { RedisServer } from '../../../helpers/redis-server.js'

t.test('after the subscriber connection first drops, broadcasts and watched rooms\' presence events arrive again, unwatched ones do not', async t => {
  const redis = await RedisServer.start(t)
  const admin = redis.client(t)
  const engine = await testEngine({ broker: 'redis', history: 'redis', presence: 'redis', redisUrls: [redis.url] }, { historySize: 10, historyTtlMs: 60_000, idempotencyTtlMs: 60_000 })
  t.teardown(() => engine.close())
  const events: PresenceEvent[] = []
  let broadcasts = 0
  engine.broker.handle({ publication () {}, broadcast () { broadcasts++ }, presence (event) { events.push(event) }, epoch () {}, lost () {} })
  await engine.broker.subscribe('watched')
  await engine.broker.subscribe('quiet')
  await engine.broker.watch('watched')
  await engine.broker.watch('quiet')
  await engine.broker.unwatch('quiet')

  await admin.client('KILL', 'TYPE', 'pubsub')
  // Pub/sub keeps nothing for a subscriber that is away: send until one arrives after the resubscribe.
  const deadline = Date.now() + 5000
  for (let n = 0; !events.some(event => event.room === 'watched') || broadcasts === 0; n++) {
    if (Date.now() > deadline) throw new Error(`after the reconnect: ${events.length} presence events, ${broadcasts} broadcasts`)
    await engine.broker.presence({ room: 'quiet', kind: 'joined', client: `q${n}` })
    await engine.broker.presence({ room: 'watched', kind: 'joined', client: `w${n}` })
    await engine.broker.broadcast({ data: '1', priority: 1, ts: n })
    await sleep(50)
  }
  t.same(events.filter(event => event.room === 'quiet'), [], 'a room unwatched before the drop is not subscribed again')
})
