import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { TestClient } from '../helpers/app.js'
import { type Message, connect, readiness, untilReadiness } from '../helpers/cluster.js'
import { startNode } from '../helpers/node-process.js'
import { redisPrefix } from '../helpers/redis.js'
import { RedisServer } from '../helpers/redis-server.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'

// A 5 s outage, a restart and a sleeping Redis, each with two server processes.
t.setTimeout(120_000)

/** Two nodes over the given Redis, each a real process. */
async function twoNodes (t: Test, redisUrl: string, extra: Record<string, string> = {}) {
  const env = {
    BROKER: 'redis',
    REDIS_URL: redisUrl,
    REDIS_PREFIX: redisPrefix(),
    REDIS_TIMEOUT_MS: '1000',
    POSITION_CHECK_MS: '300',
    DEMO: 'false',
    API_KEY: 'faults-key',
    RATE_LIMIT_PER_SEC: '100000',
    RATE_LIMIT_BURST: '100000',
    ...extra
  }
  return await Promise.all([startNode(t, { ...env, NODE_ID: 'a' }), startNode(t, { ...env, NODE_ID: 'b' })])
}

/** Every message of the room the client received so far, and those still coming, until `done` says stop. */
async function collect (client: TestClient, room: string, done: (got: Message[]) => boolean, timeoutMs = 15_000): Promise<Message[]> {
  const got: Message[] = []
  while (!done(got)) {
    got.push(await client.waitFor(m => m.op === 'message' && m.room === room, timeoutMs).catch((error: Error) => {
      throw new Error(`${error.message}; got so far: ${JSON.stringify(got.slice(-5))}`)
    }))
  }
  return got
}

t.test('Redis unreachable for 5 s during a publish stream: publishes answer unavailable, nothing acknowledged is lost', async t => {
  const redis = await RedisServer.start(t)
  const proxy = await TcpProxy.start(redis.port)
  t.teardown(() => proxy.close())
  const [a, b] = await twoNodes(t, `redis://127.0.0.1:${proxy.port}`)
  const publisher = await connect(t, a!)
  const reader = await connect(t, b!)
  await reader.request({ op: 'join', room: 'r' })
  await publisher.request({ op: 'join', room: 'r' })

  const acked = new Map<number, number>()
  const failures: string[] = []
  let phase: 'before' | 'outage' | 'after' = 'before'
  let afterOutage = 0
  let next = 1
  while (phase !== 'after' || afterOutage < 50) {
    const i = next++
    const reply = await publisher.request({ op: 'publish', room: 'r', data: i, id: `m${i}` })
    if (reply.ok === true) {
      acked.set(i, reply.seq as number)
      if (phase === 'after') afterOutage++
    } else {
      failures.push(reply.code as string)
      await sleep(20)
    }
    if (phase === 'before' && acked.size === 50) {
      proxy.cut()
      phase = 'outage'
      await untilReadiness(a!, 503)
      t.equal(await readiness(b!), 503, '/readyz is 503 on every node while Redis is away')
      const http = await fetch(`http://127.0.0.1:${b!.port}/api/rooms/r/messages`, {
        method: 'POST',
        headers: { authorization: 'Bearer faults-key', 'content-type': 'application/json' },
        body: JSON.stringify({ data: 'via http' })
      })
      t.equal(http.status, 503, 'an HTTP publish answers 503')
      t.match(await http.json(), { code: 'unavailable', message: String })
      setTimeout(() => { proxy.restore() }, 5000)
    }
    if (phase === 'outage' && await readiness(a!) === 200) phase = 'after'
  }
  t.ok(failures.length > 0, `publishes during the outage failed (${failures.length})`)
  t.same(new Set(failures), new Set(['unavailable']), 'with the error code unavailable')
  await untilReadiness(b!, 200)

  const last = Math.max(...acked.values())
  const got = await collect(reader, 'r', messages => messages.at(-1)?.seq === last)
  const seqs = got.map(m => m.seq as number)
  t.same(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'the reader got seqs 1… once each, in order')
  const received = new Set(got.map(m => m.data as number))
  t.same([...acked.keys()].filter(i => !received.has(i)), [], 'every acknowledged publish reached the reader on the other node')
  t.equal(reader.ws.readyState, reader.ws.OPEN, 'the reader was not disconnected')
})

t.test('Redis restarted empty: members are told the new epoch, a recovery gets epoch_changed, seqs start again', async t => {
  const redis = await RedisServer.start(t)
  const [a, b] = await twoNodes(t, redis.url)
  const publisher = await connect(t, a!)
  const reader = await connect(t, b!)
  const joined = await reader.request({ op: 'join', room: 'r' })
  await publisher.request({ op: 'join', room: 'r' })
  for (let i = 1; i <= 5; i++) await publisher.request({ op: 'publish', room: 'r', data: i })
  await collect(reader, 'r', got => got.length === 5)

  await redis.restart()
  const notice = await reader.waitFor(m => m.op === 'epoch', 10_000)
  t.match(notice, { room: 'r' })
  t.not(notice.epoch, joined.epoch, 'a new life of the stream')
  await untilReadiness(a!, 200)
  const published = await publisher.request({ op: 'publish', room: 'r', data: 'new life' })
  t.match(published, { ok: true, seq: 1 })
  t.match(await reader.waitFor(m => m.op === 'message'), { seq: 1, data: 'new life' })

  const late = await connect(t, a!)
  t.match(await late.request({ op: 'join', room: 'r', since: { seq: 5, epoch: joined.epoch } }), { recovered: false, reason: 'epoch_changed', epoch: notice.epoch, seq: 1 })
})

t.test('a slow Redis (DEBUG SLEEP): late answers are kept, one past REDIS_TIMEOUT_MS answers unavailable, a retry with its id delivers once', async t => {
  const redis = await RedisServer.start(t)
  const admin = redis.client(t)
  const [a, b] = await twoNodes(t, redis.url)
  const publisher = await connect(t, a!)
  const reader = await connect(t, b!)
  await reader.request({ op: 'join', room: 'r' })
  await publisher.request({ op: 'join', room: 'r' })

  let sleeping = admin.call('DEBUG', 'SLEEP', '0.5')
  let started = Date.now()
  t.match(await publisher.request({ op: 'publish', room: 'r', data: 'late', id: 'p1' }), { ok: true, seq: 1 })
  t.ok(Date.now() - started >= 300, 'it waited for Redis')
  await sleeping

  sleeping = admin.call('DEBUG', 'SLEEP', '2')
  started = Date.now()
  t.match(await publisher.request({ op: 'publish', room: 'r', data: 'hung', id: 'p2' }), { op: 'error', code: 'unavailable' })
  t.ok(Date.now() - started < 1900, 'answered at REDIS_TIMEOUT_MS, not when Redis woke up')
  await sleeping
  // The timed-out script ran when Redis woke: the retry with the same id finds it.
  t.match(await publisher.request({ op: 'publish', room: 'r', data: 'hung', id: 'p2' }), { ok: true, seq: 2, duplicate: true })
  await publisher.request({ op: 'publish', room: 'r', data: 'after' })
  const got = await collect(reader, 'r', messages => messages.length === 3)
  t.same(got.map(m => [m.seq, m.data]), [[1, 'late'], [2, 'hung'], [3, 'after']], 'each once')
  await sleep(400)
  t.same(reader.received.filter(m => m.op === 'message'), [], 'no second copy came later')
})
