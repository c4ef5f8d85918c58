import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { type Message, connect, readiness } from '../helpers/cluster.js'
import { DATABASE_URL, TEST_SCHEMA, cleanUpTestResources } from '../helpers/engine.js'
import { NatsServer } from '../helpers/nats-server.js'
import { startNode } from '../helpers/node-process.js'

t.setTimeout(120_000)
cleanUpTestResources(t)


t.test('BROKER=nats HISTORY=postgres: two nodes as one, a NATS outage fails publishes clearly, and they resume', async t => {
  const nats = await NatsServer.start(t)
  const env = {
    BROKER: 'nats',
    HISTORY: 'postgres',
    NATS_URL: nats.url,
    DATABASE_URL,
    DATABASE_SCHEMA: TEST_SCHEMA,
    POSITION_CHECK_MS: '300',
    API_KEY: 'nats-key',
    DEMO: 'false',
    RATE_LIMIT_PER_SEC: '100000',
    RATE_LIMIT_BURST: '100000'
  }
  const [a, b] = await Promise.all([startNode(t, { ...env, NODE_ID: 'a' }), startNode(t, { ...env, NODE_ID: 'b' })])
  const [publisherA, publisherB, reader] = await Promise.all([connect(t, a), connect(t, b), connect(t, b)])
  for (const client of [publisherA, publisherB, reader]) await client.request({ op: 'join', room: 'nats-room' })

  const acked = new Set<number>()
  const failures: string[] = []
  const publish = async (i: number): Promise<void> => {
    const reply = await (i % 2 === 0 ? publisherA : publisherB).request({ op: 'publish', room: 'nats-room', data: i })
    if (reply.ok === true) acked.add(i)
    else failures.push(reply.code as string)
  }
  await Promise.all(Array.from({ length: 100 }, (_, i) => publish(i + 1)))
  t.equal(acked.size, 100)

  await nats.stop()
  const deadline = Date.now() + 10_000
  while (await readiness(a) !== 503 && Date.now() < deadline) await sleep(50)
  t.equal(await readiness(a), 503, '/readyz is 503 while NATS is away')
  for (let i = 101; i <= 110; i++) await publish(i)
  t.ok(failures.length > 0 && failures.every(code => code === 'unavailable'), `publishes fail with unavailable (${failures.length})`)

  await nats.restart()
  while ((await readiness(a) !== 200 || await readiness(b) !== 200) && Date.now() < deadline + 15_000) await sleep(50)
  t.equal(await readiness(b), 200, 'both nodes reconnect by themselves')
  await Promise.all(Array.from({ length: 100 }, (_, i) => publish(201 + i)))

  const got: Message[] = []
  const top = Math.max(...(await Promise.all([publisherA.request({ op: 'history', room: 'nats-room', limit: 1, reverse: true })])).map(h => h.seq as number))
  while (got.at(-1)?.seq !== top) got.push(await reader.waitFor(m => m.op === 'message', 10_000))
  t.same(got.map(m => m.seq), Array.from({ length: top }, (_, i) => i + 1), 'the reader got one gapless sequence in order')
  const received = new Set(got.map(m => m.data as number))
  t.same([...acked].filter(i => !received.has(i)), [], 'every acknowledged publish')

  const nodes = await fetch(`http://127.0.0.1:${a.port}/api/nodes`, { headers: { authorization: 'Bearer nats-key' } })
  t.same(((await nodes.json()) as { nodes: { id: string }[] }).nodes.map(node => node.id), ['a', 'b'], 'the node registry over NATS')
})
