import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { testEngine } from '../../../helpers/engine.js'
import { REDIS_URL, redisPrefix, scriptsRun } from '../../../helpers/redis.js'

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

t.test('the joins of a turn to a room reach Redis as one call per thousand members, and the positions they read as one', async t => {
  const prefix = redisPrefix()
  const engine = await testEngine({ broker: 'redis', history: 'redis', presence: 'redis', redisPrefix: prefix }, { historySize: 10, historyTtlMs: 60_000, idempotencyTtlMs: 60_000 })
  t.teardown(() => engine.close())
  await engine.publish({ room: 'storm', data: '1', priority: 2, ts: 1 })
  let positions: unknown[] = []
  const scripts = await scriptsRun(prefix, async () => {
    const joins = Array.from({ length: 2500 }, (_, i) => engine.presence.join('storm', { client: `c${i}`, user: `u${i % 7}`, joinedAt: i, info: i }))
    positions = await Promise.all(Array.from({ length: 2500 }, () => engine.history.position('storm')))
    await Promise.all(joins)
  })
  t.equal(scripts.get(`${prefix}{storm}:p`), 3, 'presence: 2500 joins in three calls')
  t.equal(scripts.get(`${prefix}{storm}:s`), 1, 'one read of the position')
  t.ok(positions.every(position => (position as { seq: number }).seq === 1), 'every join was told the same position')
  t.match(await engine.presence.page('storm', 1), { total: 2500, users: 7 }, 'every member is there')
  const again = await scriptsRun(prefix, async () => {
    await engine.presence.join('storm', { client: 'late', joinedAt: 0 })
    await engine.presence.join('storm', { client: 'later', joinedAt: 0 })
  })
  t.equal(again.get(`${prefix}{storm}:p`), 2, 'joins of different turns make calls of their own')
  t.match(await engine.presence.page('storm', 1), { total: 2502 })
})

t.test('joins and leaves of one turn reach Redis in the order they were made', async t => {
  const prefix = redisPrefix()
  const engine = await testEngine({ broker: 'redis', history: 'redis', presence: 'redis', redisPrefix: prefix, presenceTtlMs: 600 }, { historySize: 10, historyTtlMs: 60_000, idempotencyTtlMs: 60_000 })
  t.teardown(() => engine.close())
  const member = (client: string): { client: string, user: string, joinedAt: number } => ({ client, user: client, joinedAt: 1 })
  const scripts = await scriptsRun(prefix, () => Promise.all([
    engine.presence.join('order', member('back')),
    engine.presence.leave('order', 'back'),
    engine.presence.join('order', member('back')),
    engine.presence.join('order', member('gone')),
    engine.presence.leave('order', 'gone')
  ]))
  t.equal(scripts.get(`${prefix}{order}:p`), 1, 'one call for the five changes')
  t.match(await engine.presence.page('order', 10), { total: 1, users: 1, members: [{ client: 'back' }] }, 'who rejoined is in, who left last is out')
  t.match(engine.presence.stats(), { members: 1 }, 'and only the member still in is refreshed by this node')
  // A refresh (every 200 ms here) would bring back a member this node still counted.
  await sleep(700)
  t.match(await engine.presence.page('order', 10), { total: 1, members: [{ client: 'back' }] }, 'still so after refreshes')
})

t.test('the members of a node that stopped are announced as left in one message per room', async t => {
  const prefix = redisPrefix()
  const parts = { broker: 'redis', history: 'redis', presence: 'redis', redisPrefix: prefix, presenceTtlMs: 600 } as const
  const settings = { historySize: 10, historyTtlMs: 60_000, idempotencyTtlMs: 60_000 }
  const dying = await testEngine(parts, settings)
  const watching = await testEngine(parts, settings)
  t.teardown(() => watching.close())
  const left: string[] = []
  watching.broker.handle({
    publication () {},
    broadcast () {},
    presence (event) { if (event.kind === 'left') left.push(event.client) },
    epoch () {},
    lost () {}
  })
  await watching.broker.subscribe('wake')
  await watching.broker.watch('wake')
  // The watching node refreshes the room because it has a member there itself.
  await watching.presence.join('wake', { client: 'stays', joinedAt: 0 })
  await Promise.all(Array.from({ length: 50 }, (_, i) => dying.presence.join('wake', { client: `d${i}`, joinedAt: i })))
  // Closed without leaving: its members are no longer refreshed, as when a node dies.
  await dying.close()
  const received = (): number => watching.cluster?.shards.reduce((total, shard) => total + shard.stats.messagesIn, 0) ?? 0
  const before = received()
  const deadline = Date.now() + 5000
  while (left.length < 50 && Date.now() < deadline) await sleep(20)
  t.same([...left].sort(), Array.from({ length: 50 }, (_, i) => `d${i}`).sort(), 'every member of the stopped node')
  t.equal(received() - before, 1, 'in one message')
  t.match(await watching.presence.page('wake', 10), { total: 1, members: [{ client: 'stays' }] })
})
