import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { type Message, connect, messages, range, readiness } from '../helpers/cluster.js'
import { AMQP_URL, DATABASE_URL, TEST_SCHEMA, testExchange, cleanUpTestResources } from '../helpers/engine.js'
import { startNode } from '../helpers/node-process.js'
import { REDIS_URL, redisPrefix } from '../helpers/redis.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'

// The chat design's topology, three processes; then all of them restarted; then a RabbitMQ outage.
t.setTimeout(120_000)
cleanUpTestResources(t)

function seedEnv (amqpUrl = AMQP_URL): Record<string, string> {
  return {
    BROKER: 'amqp',
    HISTORY: 'postgres',
    PRESENCE: 'redis',
    AMQP_URL: amqpUrl,
    AMQP_EXCHANGE: testExchange(),
    DATABASE_URL,
    DATABASE_SCHEMA: TEST_SCHEMA,
    REDIS_URL,
    REDIS_PREFIX: redisPrefix(),
    POSITION_CHECK_MS: '300',
    API_KEY: 'amqp-key',
    DEMO: 'false',
    RATE_LIMIT_PER_SEC: '100000',
    RATE_LIMIT_BURST: '100000'
  }
}


t.test('BROKER=amqp HISTORY=postgres PRESENCE=redis, three nodes: fan-out in order, recovery elsewhere, presence, history after a restart of all', async t => {
  const env = seedEnv()
  const nodes = await Promise.all(['a', 'b', 'c'].map(id => startNode(t, { ...env, NODE_ID: id })))
  const [a, b, c] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]]
  const [onA, onB, onC] = await Promise.all([connect(t, a), connect(t, b), connect(t, c)])
  for (const client of [onA, onB, onC]) await client.request({ op: 'join', room: 'chat', presence: true })
  const joined = await onC.request({ op: 'history', room: 'chat', limit: 1 })

  await Promise.all(range(1, 150).map(i => (i % 2 === 0 ? onA : onB).request({ op: 'publish', room: 'chat', data: i })))
  for (const [name, client] of [['A', onA], ['B', onB], ['C', onC]] as const) {
    t.same((await messages(client, 'chat', 150)).map(m => m.seq), range(1, 150), `node ${name}: every seq once, in order`)
  }
  const presence = await onB.request({ op: 'presence', room: 'chat' })
  t.equal(presence.total, 3, 'presence lists the members of all three nodes')

  // A reader leaves C, messages go on, and it recovers on A.
  onC.ws.terminate()
  await Promise.all(range(151, 170).map(i => onB.request({ op: 'publish', room: 'chat', data: i })))
  const moved = await connect(t, a)
  const recovered = await moved.request({ op: 'join', room: 'chat', since: { seq: 150, epoch: joined.epoch } })
  t.match(recovered, { recovered: true, seq: 170 })
  t.same((await messages(moved, 'chat', 20)).map(m => m.seq), range(151, 170), 'recovered on another node')

  for (const node of nodes) node.child.kill('SIGTERM')
  await Promise.all(nodes.map(node => node.exited))
  const restarted = await startNode(t, { ...env, NODE_ID: 'd' })
  const late = await connect(t, restarted)
  t.match(await late.request({ op: 'join', room: 'chat', since: { seq: 160, epoch: joined.epoch } }), { recovered: true, seq: 170, epoch: joined.epoch }, 'the stream outlived every node')
  t.same((await messages(late, 'chat', 10)).map(m => m.data), range(161, 170))
})

t.test('RabbitMQ unreachable: publishes answer unavailable, nothing acknowledged is lost, the node reconnects by itself', async t => {
  const proxy = await TcpProxy.start(Number(new URL(AMQP_URL).port || 5672))
  t.teardown(() => proxy.close())
  const viaProxy = new URL(AMQP_URL)
  viaProxy.port = String(proxy.port)
  const env = seedEnv(viaProxy.toString())
  const [a, b] = await Promise.all([startNode(t, { ...env, NODE_ID: 'a' }), startNode(t, { ...env, AMQP_URL, NODE_ID: 'b' })])
  const publisher = await connect(t, a)
  const reader = await connect(t, b)
  await reader.request({ op: 'join', room: 'outage' })
  await publisher.request({ op: 'join', room: 'outage' })
  const acked = new Set<number>()
  const failures: string[] = []
  const publish = async (i: number): Promise<void> => {
    const reply = await publisher.request({ op: 'publish', room: 'outage', data: i })
    if (reply.ok === true) acked.add(i)
    else failures.push(reply.code as string)
  }
  for (let i = 1; i <= 20; i++) await publish(i)
  proxy.cut()
  const deadline = Date.now() + 10_000
  while (await readiness(a) !== 503 && Date.now() < deadline) await sleep(50)
  t.equal(await readiness(a), 503, '/readyz 503 on the node that lost RabbitMQ')
  for (let i = 21; i <= 30; i++) await publish(i)
  t.ok(failures.length > 0 && failures.every(code => code === 'unavailable'), `refused with unavailable (${failures.length})`)
  proxy.restore()
  while (await readiness(a) !== 200 && Date.now() < deadline + 15_000) await sleep(50)
  t.equal(await readiness(a), 200, 'reconnected with backoff, by itself')
  for (let i = 31; i <= 50; i++) await publish(i)
  const newest = await publisher.request({ op: 'history', room: 'outage', limit: 1, reverse: true })
  const top = newest.seq as number
  const got: Message[] = []
  while (got.at(-1)?.seq !== top) got.push(await reader.waitFor(m => m.op === 'message', 10_000))
  t.same(got.map(m => m.seq), range(1, top), 'the reader on the other node: one gapless sequence')
  const received = new Set(got.map(m => m.data as number))
  t.same([...acked].filter(i => !received.has(i)), [], 'every acknowledged publish arrived')
})
