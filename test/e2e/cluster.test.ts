import t from 'tap'
import { connect, messages, range } from '../helpers/cluster.js'
import { startNode } from '../helpers/node-process.js'
import { REDIS_URL, redisPrefix } from '../helpers/redis.js'

const API_KEY = 'cluster-test-key'
const PRESENCE_TTL_MS = 3000
const prefix = redisPrefix()
const env = {
  BROKER: 'redis',
  REDIS_URL,
  REDIS_PREFIX: prefix,
  PRESENCE_TTL_MS: String(PRESENCE_TTL_MS),
  POSITION_CHECK_MS: '500',
  API_KEY,
  DEMO: 'false',
  RATE_LIMIT_PER_SEC: '100000',
  RATE_LIMIT_BURST: '100000'
}

// Three real server processes on their own ports, sharing one Redis under this file's prefix.
const [a, b, c] = await Promise.all(['node-a', 'node-b', 'node-c'].map(id => startNode(t, { ...env, NODE_ID: id })))
const nodes = { a: a!, b: b!, c: c! }

async function api (node: { port: number }, path: string, init: RequestInit = {}): Promise<{ status: number, body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${node.port}/api${path}`, {
    ...init,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', ...init.headers }
  })
  return { status: response.status, body: await response.json() as Record<string, unknown> }
}


t.test('a publish on node A reaches members on B and C in seq order', async t => {
  const [publisher, onB, onC] = await Promise.all([connect(t, nodes.a), connect(t, nodes.b), connect(t, nodes.c)])
  t.teardown(() => { for (const client of [publisher, onB, onC]) client.close() })
  const joins = await Promise.all([publisher, onB, onC].map(client => client.request({ op: 'join', room: 'fanout' })))
  t.ok(joins.every(join => join.ok === true && join.epoch === joins[0]!.epoch), 'one stream, one epoch, whichever node is asked')
  const replies = await Promise.all(range(1, 200).map(i => publisher.request({ op: 'publish', room: 'fanout', data: { i } })))
  t.same(replies.map(reply => reply.seq), range(1, 200), 'one sequence for the room, cluster-wide')
  for (const [name, client] of [['B', onB], ['C', onC], ['A', publisher]] as const) {
    const got = await messages(client, 'fanout', 200)
    t.same(got.map(m => m.seq), range(1, 200), `node ${name}: every seq once, in order`)
    t.same(got.map(m => (m.data as { i: number }).i), range(1, 200), `node ${name}: with its data`)
  }
})

t.test('a reader cut off on B reconnects to C with since during a publish stream: every seq exactly once', async t => {
  const publisher = await connect(t, nodes.a)
  const reader = await connect(t, nodes.b)
  t.teardown(() => { publisher.close() })
  const joined = await reader.request({ op: 'join', room: 'stream' })
  await publisher.request({ op: 'join', room: 'stream' })
  const total = 600
  let published = 0
  const publishing = (async () => {
    while (published < total) {
      // Small bursts, so that messages are in flight while the reader is away and while it rejoins.
      const burst = range(published + 1, Math.min(total, published + 10))
      const replies = await Promise.all(burst.map(i => publisher.request({ op: 'publish', room: 'stream', data: i })))
      if (replies.some(reply => reply.ok !== true)) throw new Error(`a publish failed: ${JSON.stringify(replies)}`)
      published += burst.length
    }
  })()
  const before = await messages(reader, 'stream', 150)
  reader.ws.terminate()
  await reader.closed
  const last = before.at(-1)!.seq as number
  const again = await connect(t, nodes.c)
  t.teardown(() => { again.close() })
  const reply = await again.request({ op: 'join', room: 'stream', since: { seq: last, epoch: joined.epoch } })
  t.match(reply, { ok: true, recovered: true, epoch: joined.epoch })
  await publishing
  const after = await messages(again, 'stream', total - last)
  const seqs = [...before, ...after].map(m => m.seq as number)
  t.same(seqs, range(1, total), 'no gap and no duplicate at the seam, though the reader moved to another node')
  t.equal(again.received.filter(m => m.op === 'message').length, 0, 'nothing after the last seq')
})

t.test('presence on any node lists the members of all three, and GET /api/nodes lists the nodes', async t => {
  const clients = await Promise.all([connect(t, nodes.a), connect(t, nodes.b), connect(t, nodes.c)])
  t.teardown(() => { for (const client of clients) client.close() })
  const ids: string[] = []
  for (const client of clients) {
    await client.request({ op: 'join', room: 'lobby-all', info: { name: 'x' } })
    ids.push(((await client.request({ op: 'presence', room: 'lobby-all' })).members as { client: string }[]).at(-1)!.client)
  }
  for (const [name, client] of [['A', clients[0]], ['B', clients[1]], ['C', clients[2]]] as const) {
    const page = await client!.request({ op: 'presence', room: 'lobby-all' })
    t.equal(page.total, 3, `node ${name} counts all three`)
    t.same((page.members as { client: string }[]).map(m => m.client), ids, `node ${name} lists them in join order`)
  }
  const http = await api(nodes.b, '/rooms/lobby-all/presence')
  t.equal(http.body.total, 3, 'and so does the HTTP API')

  // A node's entry is as fresh as its latest heartbeat (every PRESENCE_TTL_MS / 3).
  type Listed = { id: string, connections: number, rooms: number, version: string, uptime: number }
  let list: Listed[] = []
  const deadline = Date.now() + PRESENCE_TTL_MS
  do {
    const listed = await api(nodes.c, '/nodes')
    t.equal(listed.status, 200)
    list = listed.body.nodes as Listed[]
  } while (!list.every(node => node.connections >= 1 && node.rooms >= 1) && Date.now() < deadline && await new Promise(resolve => setTimeout(resolve, 100, true)))
  t.same(list.map(node => node.id), ['node-a', 'node-b', 'node-c'])
  t.ok(list.every(node => node.connections >= 1 && node.rooms >= 1), 'with their connections and rooms')
  t.ok(list.every(node => node.version === list[0]!.version && /^\d+\.\d+\.\d+/.test(node.version) && node.uptime >= 0), 'version and uptime')
})

t.test('a broadcast through the HTTP API of one node reaches every node\'s clients', async t => {
  const clients = await Promise.all([connect(t, nodes.a), connect(t, nodes.b), connect(t, nodes.c)])
  t.teardown(() => { for (const client of clients) client.close() })
  const sent = await api(nodes.a, '/broadcast', { method: 'POST', body: JSON.stringify({ data: { notice: 'all' }, priority: 'high' }) })
  t.equal(sent.status, 202)
  for (const client of clients) t.match(await client.op('broadcast'), { data: { notice: 'all' }, priority: 'high' })
  const published = await api(nodes.b, '/rooms/api-room/messages', { method: 'POST', body: JSON.stringify({ data: 'via http' }) })
  t.match(published, { status: 202, body: { seq: 1 } })
})

t.test('a node killed with SIGKILL: its members leave presence within PRESENCE_TTL_MS, its clients recover elsewhere', async t => {
  const watcher = await connect(t, nodes.a)
  const publisher = await connect(t, nodes.b)
  const victim = await connect(t, nodes.c)
  t.teardown(() => { watcher.close(); publisher.close() })
  await watcher.request({ op: 'join', room: 'lobby', presence: true })
  await publisher.request({ op: 'join', room: 'lobby' })
  await watcher.op('joined')
  const joined = await victim.request({ op: 'join', room: 'lobby' })
  const victimId = (await watcher.waitFor(m => m.op === 'joined')).client as string
  for (let i = 1; i <= 5; i++) await publisher.request({ op: 'publish', room: 'lobby', data: i })
  const seen = await messages(victim, 'lobby', 5)

  nodes.c.child.kill('SIGKILL')
  const killedAt = Date.now()
  await victim.closed
  for (let i = 6; i <= 10; i++) await publisher.request({ op: 'publish', room: 'lobby', data: i })

  t.match(await watcher.waitFor(m => m.op === 'left' && m.client === victimId, PRESENCE_TTL_MS + 2000), { room: 'lobby' }, 'watchers are told it left')
  const elapsed = Date.now() - killedAt
  t.ok(elapsed <= PRESENCE_TTL_MS + 250, `gone within the TTL, give or take delivery (${elapsed} ms)`)
  const page = await api(nodes.a, '/rooms/lobby/presence')
  t.notOk((page.body.members as { client: string }[]).some(m => m.client === victimId), 'no longer listed')

  const back = await connect(t, nodes.a)
  t.teardown(() => { back.close() })
  const reply = await back.request({ op: 'join', room: 'lobby', since: { seq: seen.at(-1)!.seq, epoch: joined.epoch } })
  t.match(reply, { recovered: true, seq: 10 })
  t.same((await messages(back, 'lobby', 5)).map(m => m.data), [6, 7, 8, 9, 10], 'what was published while it was away')

  const deadline = Date.now() + PRESENCE_TTL_MS + 2000
  let ids: string[] = []
  do {
    ids = ((await api(nodes.a, '/nodes')).body.nodes as { id: string }[]).map(node => node.id)
  } while (ids.includes('node-c') && Date.now() < deadline && await new Promise(resolve => setTimeout(resolve, 100, true)))
  t.same(ids, ['node-a', 'node-b'], 'the dead node leaves the registry')
})
