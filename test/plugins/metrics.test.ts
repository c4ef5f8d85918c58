import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { buildApp, injectClient } from '../helpers/app.js'
import { REDIS_URL, redisPrefix } from '../helpers/redis.js'
import type { SwitchboardOptions } from '../../app.js'

function sample (text: string, series: string): number {
  const line = text.split('\n').find(l => l.startsWith(series + ' '))
  if (line === undefined) throw new Error(`no sample ${series}`)
  return Number(line.slice(series.length + 1))
}

t.test('/metrics exports the ws_* metrics, and they move with traffic', async t => {
  const app = await buildApp(t)
  const before = (await app.inject('/metrics')).body
  for (const name of [
    'ws_active_connections', 'ws_messages_sent_total', 'ws_messages_dropped_total', 'ws_send_queue_length',
    'ws_tasks_submitted_total', 'ws_tasks_dropped_total', 'ws_worker_queue_length', 'ws_messages_received_total',
    'ws_rooms', 'ws_slow_consumer_disconnects_total', 'ws_protocol_errors_total', 'ws_task_duration_seconds',
    'ws_outbox_wait_seconds', 'ws_tasks_completed_total', 'ws_tasks_retried_total', 'ws_tasks_dead_lettered_total',
    'ws_worker_utilization', 'ws_task_wait_seconds'
  ]) {
    t.match(before, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exported`)
  }
  t.equal(sample(before, 'ws_active_connections'), 0)

  const a = await injectClient(app)
  const b = await injectClient(app)
  await a.request({ op: 'join', room: 'm' })
  await b.request({ op: 'join', room: 'm' })
  await a.request({ op: 'publish', room: 'm', data: 1, priority: 'low' })
  await b.op('message')
  await a.request({ op: 'task', name: 'echo', data: 1 })
  a.send('garbage')
  await a.op('error')

  const after = (await app.inject('/metrics')).body
  t.equal(sample(after, 'ws_active_connections'), 2)
  t.equal(sample(after, 'ws_rooms'), 1)
  t.equal(sample(after, 'ws_room_memberships'), 2)
  t.equal(sample(after, 'ws_outboxes'), 2)
  t.equal(sample(after, 'ws_messages_received_total'), 5)
  t.equal(sample(after, 'ws_messages_sent_total{priority="low"}'), 2, 'one publish, two recipients')
  t.ok(sample(after, 'ws_messages_sent_total{priority="critical"}') >= 5, 'replies and errors go out as critical')
  t.equal(sample(after, 'ws_protocol_errors_total{code="bad_request"}'), 1)
  t.equal(sample(after, 'ws_tasks_submitted_total'), 1)
  t.equal(sample(after, 'ws_tasks_completed_total{status="ok"}'), 1)
  t.equal(sample(after, 'ws_task_duration_seconds_count{name="echo"}'), 1)
  t.ok(sample(after, 'ws_outbox_wait_seconds_count') >= 7)
  t.equal(sample(after, 'ws_outbox_wait_seconds_bucket{le="+Inf"}'), sample(after, 'ws_outbox_wait_seconds_count'))
  t.match(after, /^http_request_duration_seconds_count\{method="GET",route="\/metrics",status_code="200"\} 1$/m, 'route metrics are on')
  t.match(after, /^process_cpu_user_seconds_total /m, 'default process metrics are on')
})

t.test('ws_idempotency_records counts keyed task results and publish ids, and falls to zero after IDEMPOTENCY_TTL_MS', async t => {
  const app = await buildApp(t, { env: { IDEMPOTENCY_TTL_MS: '1000' } })
  const client = await injectClient(app)
  await client.request({ op: 'task', name: 'echo', data: 1, key: 'k1' })
  await client.request({ op: 'join', room: 'ids' })
  await client.request({ op: 'publish', room: 'ids', data: 1, id: 'p1' })
  await client.request({ op: 'publish', room: 'ids', data: 2, id: 'p2' })
  await client.request({ op: 'publish', room: 'ids', data: 3 })
  const records = async (): Promise<[number, number]> => {
    const text = (await app.inject('/metrics')).body
    return [sample(text, 'ws_idempotency_records{kind="task"}'), sample(text, 'ws_idempotency_records{kind="publish"}')]
  }
  t.same(await records(), [1, 2], 'one keyed task result, two publish ids; a publish without id keeps none')
  // Released by the sweeps, with no further traffic to trigger them.
  const deadline = Date.now() + 3000
  let now = await records()
  while ((now[0] !== 0 || now[1] !== 0) && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 50))
    now = await records()
  }
  t.same(now, [0, 0])
})

t.test('two apps in one process keep separate registries', async t => {
  const one = await buildApp(t)
  const two = await buildApp(t)
  await injectClient(one)
  t.equal(sample((await one.inject('/metrics')).body, 'ws_active_connections'), 1)
  t.equal(sample((await two.inject('/metrics')).body, 'ws_active_connections'), 0)
  t.not(one.metricsRegistry, two.metricsRegistry)
})

const promtool = ['promtool', '/usr/bin/promtool'].find(candidate => {
  try { execFileSync(candidate, ['--version'], { stdio: 'ignore' }); return true } catch { return false }
})

/** Traffic of every kind, then the exposition as promtool sees it. */
async function checkExposition (t: Test, options: SwitchboardOptions): Promise<string> {
  const app = await buildApp(t, { apiKey: 'k', ...options })
  const client = await injectClient(app)
  await client.request({ op: 'join', room: 'scraped' })
  await client.request({ op: 'publish', room: 'scraped', data: 1 })
  await client.request({ op: 'task', name: 'echo', data: 1 })
  // HTTP traffic of every kind fills the route metrics: success, client errors, an unknown route.
  const auth = { authorization: 'Bearer k' }
  t.equal((await app.inject({ method: 'POST', url: '/api/rooms/scraped/messages', headers: auth, payload: { data: 2 } })).statusCode, 202)
  t.equal((await app.inject({ method: 'POST', url: '/api/rooms/scraped/messages', headers: auth, payload: { nope: 1 } })).statusCode, 400)
  t.equal((await app.inject({ method: 'GET', url: '/api/rooms', headers: auth })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/api/rooms' })).statusCode, 401)
  t.equal((await app.inject('/readyz')).statusCode, 200)
  await client.waitFor(m => m.op === 'message' && m.seq === 2)
  await app.inject('/metrics')
  const exposition = (await app.inject('/metrics')).body
  t.match(exposition, /^http_request_duration_seconds_count\{method="POST",route="\/api\/rooms\/:room\/messages",status_code="202"\} 1$/m, 'route metrics cover the API')
  t.notMatch(exposition, /_summary_seconds/, 'no route summary')
  if (promtool === undefined) {
    if (process.env.CI === 'true') t.fail('promtool is required in CI (.ci/run installs it)')
    else t.skip('promtool is not installed', () => {})
    return exposition
  }
  const file = join(mkdtempSync(join(tmpdir(), 'metrics-')), 'metrics.txt')
  writeFileSync(file, exposition)
  const output = execFileSync('sh', ['-c', `${promtool} check metrics < ${file} 2>&1; echo "exit=$?"`]).toString()
  t.match(output, /exit=0/, output)
  return exposition
}

t.test('the exposition passes promtool check metrics after HTTP and WebSocket traffic', async t => {
  const exposition = await checkExposition(t, {})
  t.match(exposition, /^ws_history_streams 1$/m, 'the memory engine counts its streams')
  t.notMatch(exposition, /ws_broker_/, 'no cluster metrics on one node')
})

t.test('with the Redis engine: the cluster metrics, and promtool still passes', async t => {
  const exposition = await checkExposition(t, { broker: 'redis', redisUrl: REDIS_URL, redisPrefix: redisPrefix() })
  t.match(exposition, /^ws_broker_publish_seconds_count 2$/m, 'both publishes went through Redis')
  t.match(exposition, /^ws_broker_lag_seconds_count 2$/m, 'and came back over pub/sub')
  t.match(exposition, /^ws_broker_messages_received_total\{shard="127\.0\.0\.1:6379"\} [1-9]/m, 'per-shard traffic')
  t.match(exposition, /^ws_broker_commands_total\{shard="127\.0\.0\.1:6379"\} [1-9]/m)
  t.match(exposition, /^ws_broker_reconnects_total\{shard="127\.0\.0\.1:6379"\} 0$/m)
  t.match(exposition, /^ws_broker_repairs_total 0$/m)
  t.match(exposition, /^ws_broker_repair_retries_total 0$/m)
  t.notMatch(exposition, /ws_history_streams/, 'streams are Redis\'s to count')
})
