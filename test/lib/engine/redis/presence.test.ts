import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { testEngine } from '../../../helpers/engine.js'
import { REDIS_URL, redisPrefix } from '../../../helpers/redis.js'

t.test('members that Redis lost are restored by their node\'s next refresh, still connected', async t => {
  const prefix = redisPrefix()
  const engine = await testEngine({ broker: 'redis', history: 'redis', presence: 'redis', redisPrefix: prefix, presenceTtlMs: 900 }, { historySize: 10, historyTtlMs: 60_000, idempotencyTtlMs: 60_000 })
  t.teardown(() => engine.close())
  await engine.presence.join('kept', { client: 'c1', user: 'alice', joinedAt: 1, info: { n: 1 } })
  const admin = new Redis(REDIS_URL)
  t.teardown(() => { admin.disconnect() })
  // As after a restart without persistence, or an outage longer than the ttl.
  await admin.del(...await admin.keys(`${prefix}{kept}:*`))
  t.match(await engine.presence.page('kept', 10), { total: 0 })
  const deadline = Date.now() + 3000
  let page = await engine.presence.page('kept', 10)
  while (page.total === 0 && Date.now() < deadline) {
    await sleep(50)
    page = await engine.presence.page('kept', 10)
  }
  t.match(page, { total: 1, users: 1, members: [{ client: 'c1', user: 'alice', joinedAt: 1, info: { n: 1 } }] }, 'back, with what it joined with')
  await engine.presence.leave('kept', 'c1')
  await sleep(700)
  t.match(await engine.presence.page('kept', 10), { total: 0, users: 0 }, 'a member that left is not restored')
})
