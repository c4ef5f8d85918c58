import t, { type Test } from 'tap'
import { type Message, connect, messages, range } from '../helpers/cluster.js'
import { DATABASE_URL, TEST_SCHEMA, cleanUpTestResources } from '../helpers/engine.js'
import { startNode } from '../helpers/node-process.js'
import { REDIS_URL, redisPrefix } from '../helpers/redis.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'

// Two nodes, with another restart, and an outage of PostgreSQL.
t.setTimeout(120_000)
cleanUpTestResources(t)

function nodeEnv (databaseUrl = DATABASE_URL): Record<string, string> {
  return {
    BROKER: 'redis',
    HISTORY: 'postgres',
    REDIS_URL,
    REDIS_PREFIX: redisPrefix(),
    DATABASE_URL: databaseUrl,
    DATABASE_SCHEMA: TEST_SCHEMA,
    DATABASE_TIMEOUT_MS: '1000',
    POSITION_CHECK_MS: '300',
    DEMO: 'false',
    RATE_LIMIT_PER_SEC: '100000',
    RATE_LIMIT_BURST: '100000'
  }
}


t.test('publishers on two nodes at once: every reader gets one gapless sequence in order', async t => {
  const env = nodeEnv()
  const [a, b] = await Promise.all([startNode(t, { ...env, NODE_ID: 'a' }), startNode(t, { ...env, NODE_ID: 'b' })])
  const [onA, onB, readerA, readerB] = await Promise.all([connect(t, a), connect(t, b), connect(t, a), connect(t, b)])
  for (const client of [onA, onB, readerA, readerB]) await client.request({ op: 'join', room: 'both' })
  // Both nodes commit and publish concurrently: their messages can cross on the way.
  const replies = await Promise.all(range(1, 300).map(i => (i % 2 === 0 ? onA : onB).request({ op: 'publish', room: 'both', data: i })))
  t.same(replies.map(reply => reply.seq).sort((x, y) => (x as number) - (y as number)), range(1, 300), 'one sequence over both nodes')
  for (const [name, reader] of [['A', readerA], ['B', readerB]] as const) {
    t.same((await messages(reader, 'both', 300)).map(m => m.seq), range(1, 300), `node ${name}'s reader: in order, no gap, no repeat`)
  }
  t.equal([...readerA.received, ...readerB.received].filter(m => m.op === 'gap').length, 0, 'nothing reported lost')
})

t.test('history and recovery survive a restart of every node', async t => {
  const env = nodeEnv()
  const first = await startNode(t, { ...env, NODE_ID: 'a' })
  const publisher = await connect(t, first)
  const joined = await publisher.request({ op: 'join', room: 'durable' })
  for (let i = 1; i <= 20; i++) await publisher.request({ op: 'publish', room: 'durable', data: i })
  first.child.kill('SIGTERM')
  await first.exited

  const again = await startNode(t, { ...env, NODE_ID: 'b' })
  const reader = await connect(t, again)
  const reply = await reader.request({ op: 'join', room: 'durable', since: { seq: 5, epoch: joined.epoch } })
  t.match(reply, { recovered: true, seq: 20, epoch: joined.epoch }, 'the same stream, after the restart')
  t.same((await messages(reader, 'durable', 15)).map(m => m.data), range(6, 20))
  const history = await reader.request({ op: 'history', room: 'durable', limit: 3, reverse: true })
  t.same((history.messages as Message[]).map(m => m.seq), [20, 19, 18])
})

t.test('PostgreSQL unreachable: publishes answer unavailable, /readyz 503, and the node resumes by itself', async t => {
  const proxy = await TcpProxy.start(Number(new URL(DATABASE_URL).port || 5432))
  t.teardown(() => proxy.close())
  const url = new URL(DATABASE_URL)
  url.port = String(proxy.port)
  const node = await startNode(t, { ...nodeEnv(url.toString()), NODE_ID: 'a' })
  const client = await connect(t, node)
  await client.request({ op: 'join', room: 'pg-outage' })
  t.match(await client.request({ op: 'publish', room: 'pg-outage', data: 'before' }), { ok: true, seq: 1 })
  proxy.cut()
  t.match(await client.request({ op: 'publish', room: 'pg-outage', data: 'during' }), { op: 'error', code: 'unavailable' })
  const deadline = Date.now() + 10_000
  let ready = 200
  while ((ready = (await fetch(`http://127.0.0.1:${node.port}/readyz`)).status) !== 503 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(ready, 503, '/readyz turns 503')
  proxy.restore()
  let reply: Message
  do {
    reply = await client.request({ op: 'publish', room: 'pg-outage', data: 'after', id: 'after-1' })
  } while (reply.op === 'error' && Date.now() < deadline + 10_000 && await new Promise(resolve => setTimeout(resolve, 100, true)))
  t.match(reply, { ok: true, seq: 2 }, 'publishes work again; the failed one took no seq')
  const got = await messages(client, 'pg-outage', 2)
  t.same(got.map(m => m.data), ['before', 'after'])
  while ((ready = (await fetch(`http://127.0.0.1:${node.port}/readyz`)).status) !== 200 && Date.now() < deadline + 15_000) await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(ready, 200, 'ready again')
})
