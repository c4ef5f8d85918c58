import t from 'tap'
import { testEngine } from '../../../helpers/engine.js'
import { redisPrefix, scriptsRun } from '../../../helpers/redis.js'

t.test('the recovering joins of a turn from the same position share one read, and each gets the replay', async t => {
  const prefix = redisPrefix()
  const engine = await testEngine({ broker: 'redis', history: 'redis', presence: 'redis', redisPrefix: prefix }, { historySize: 10, historyTtlMs: 60_000, idempotencyTtlMs: 60_000 })
  t.teardown(() => engine.close())
  const { epoch } = await engine.history.position('storm')
  for (let i = 1; i <= 3; i++) await engine.publish({ room: 'storm', data: String(i), priority: 2, ts: i })
  let recoveries: Awaited<ReturnType<typeof engine.history.recover>>[] = []
  const scripts = await scriptsRun(prefix, async () => {
    recoveries = await Promise.all([
      ...Array.from({ length: 400 }, () => engine.history.recover('storm', { epoch, seq: 1 }, 100)),
      ...Array.from({ length: 100 }, () => engine.history.recover('storm', { epoch, seq: 2 }, 100))
    ])
  })
  t.equal(scripts.get(`${prefix}{storm}:s`), 2, 'one read per position recovered from')
  t.ok(recoveries.slice(0, 400).every(r => r.recovered && r.publications.map(p => p.data).join() === '2,3'), 'those from seq 1 get 2 and 3')
  t.ok(recoveries.slice(400).every(r => r.recovered && r.publications.map(p => p.data).join() === '3'), 'those from seq 2 get 3')
  await engine.publish({ room: 'storm', data: '4', priority: 2, ts: 4 })
  t.match(await engine.history.recover('storm', { epoch, seq: 1 }, 100), { recovered: true, position: { seq: 4 } }, 'a later turn reads again')
})
