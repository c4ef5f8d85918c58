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

t.test('a room refreshed in several slices keeps every member and brings back the ones Redis lost', async t => {
  const prefix = redisPrefix()
  const engine = await testEngine({ broker: 'redis', history: 'redis', presence: 'redis', redisPrefix: prefix, presenceTtlMs: 1200 }, { historySize: 10, historyTtlMs: 60_000, idempotencyTtlMs: 60_000 })
  t.teardown(() => engine.close())
  const count = 2500
  for (let i = 0; i < count; i++) await engine.presence.join('crowd', { client: `c${i}`, user: `u${i % 10}`, joinedAt: i, info: { n: i } })
  const admin = new Redis(REDIS_URL)
  t.teardown(() => { admin.disconnect() })
  const [order, members, expiry] = ['p', 'm', 'x'].map(part => `${prefix}{crowd}:${part}`) as [string, string, string]
  // Lost by Redis: one member of the first slice and one of the last.
  for (const client of ['c5', 'c2400']) await admin.multi().zrem(order, client).hdel(members, client).zrem(expiry, client).exec()
  const deadline = Date.now() + 5000
  let total = 0
  while (Date.now() < deadline) {
    total = (await engine.presence.page('crowd', 1)).total
    if (total === count) break
    await sleep(50)
  }
  t.equal(total, count, 'every member')
  t.same(JSON.parse(await admin.hget(members, 'c2400') ?? 'null'), { c: 'c2400', u: 'u0', j: 2400, i: { n: 2400 } }, 'brought back with what it joined with')
  const soonest = Number((await admin.zrange(expiry, 0, 0, 'WITHSCORES'))[1])
  t.ok(soonest > Date.now(), 'no member is past its expiry: every slice was extended')
  t.match(await engine.presence.page('crowd', 1), { users: 10 })
})
