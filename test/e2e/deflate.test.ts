import type { AddressInfo, Socket } from 'node:net'
import fastifyWebsocket from '@fastify/websocket'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import switchboard from '../../app.js'
import { Priority } from '../../lib/protocol/priority.js'
import { TestClient, listenApp } from '../helpers/app.js'

function bytesRead (client: TestClient): number {
  return (client.ws as unknown as { _socket: Socket })._socket.bytesRead
}

/** About 1.2 KB of JSON, over the default threshold, that compresses the way real payloads do. */
function payload (n: number): unknown {
  return { n, users: Array.from({ length: 20 }, (_, i) => ({ id: 1000 + i, name: `user-${i}`, status: i % 3 === 0 ? 'away' : 'online', score: i * 17 })) }
}

/** Publishes `total` messages to a room with the clients in it; returns the wire bytes each client read for them. */
async function publishAndRead (publish: (data: unknown) => void, clients: TestClient[], total: number): Promise<number[]> {
  const before = clients.map(bytesRead)
  for (let n = 1; n <= total; n++) publish(payload(n))
  await Promise.all(clients.map(async client => {
    for (let n = 1; n <= total; n++) {
      const message = await client.op('message')
      if ((message.data as { n: number }).n !== n) throw new Error(`message ${n} arrived as ${JSON.stringify(message.data)}`)
    }
  }))
  return clients.map((client, i) => bytesRead(client) - (before[i] as number))
}

async function joinedClient (url: string, deflate: boolean): Promise<TestClient> {
  const client = await TestClient.connect(url, { perMessageDeflate: deflate })
  await client.request({ op: 'join', room: 'big' })
  return client
}

const plainSize = Buffer.byteLength(JSON.stringify(payload(100)))

t.test('PER_MESSAGE_DEFLATE=true compresses room traffic for clients that offered it', async t => {
  const { app, url } = await listenApp(t, { perMessageDeflate: true })
  const compressed = await joinedClient(`${url}/ws`, true)
  const plain = await joinedClient(`${url}/ws`, false)
  t.equal(compressed.ws.extensions, 'permessage-deflate')
  t.equal(plain.ws.extensions, '')
  const total = 300
  const [deflatedBytes, plainBytes] = await publishAndRead(data => app.hub.publish('big', data, { priority: Priority.normal }), [compressed, plain], total) as [number, number]
  t.ok(plainBytes >= total * plainSize, `the client without deflate read ${plainBytes} bytes`)
  t.ok(deflatedBytes < plainBytes / 3, `the deflate client read ${deflatedBytes} bytes, against ${plainBytes}`)
  compressed.close()
  plain.close()
})

t.test('PER_MESSAGE_DEFLATE=false (the default) does not negotiate compression', async t => {
  const { url } = await listenApp(t)
  const client = await joinedClient(`${url}/ws`, true)
  t.equal(client.ws.extensions, '', 'the offer was declined')
  client.close()
})

t.test('under a host that enabled permessage-deflate, room traffic is compressed too, in order', async t => {
  const host = Fastify({ logger: false })
  await host.register(fastifyWebsocket, { options: { perMessageDeflate: true } })
  await host.register(switchboard, { prefix: '/rt', env: {}, workers: 1, apiKey: 'k', perMessageDeflate: true })
  await host.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => host.close())
  const url = `ws://127.0.0.1:${(host.server.address() as AddressInfo).port}/rt/ws`
  const client = await joinedClient(url, true)
  t.equal(client.ws.extensions, 'permessage-deflate')
  const publish = (data: unknown): void => {
    void host.inject({ method: 'POST', url: '/rt/api/rooms/big/messages', headers: { authorization: 'Bearer k' }, payload: { data } })
  }
  const [read] = await publishAndRead(publish, [client], 300) as [number]
  t.ok(read < 300 * plainSize / 3, `${read} bytes on the wire for ${300 * plainSize} bytes of messages`)
  client.close()
})

async function sentTotal (t: Test, app: { inject: (url: string) => Promise<{ body: string }> }): Promise<number> {
  const metrics = (await app.inject('/metrics')).body
  const samples = metrics.split('\n').filter(line => line.startsWith('ws_messages_sent_total{'))
  t.equal(samples.length, 4, 'one sample per priority')
  return samples.reduce((sum, line) => sum + Number(line.split(' ')[1]), 0)
}

t.test('every server frame goes through the outbox: welcome, replies, pongs and pings are counted as sent', async t => {
  const { app, url } = await listenApp(t, { heartbeatMs: 100 })
  const client = await TestClient.connect(`${url}/ws`)
  await client.op('welcome')
  await client.request({ op: 'ping' })
  client.ws.ping('app data')
  const [pong] = await new Promise<[Buffer]>(resolve => client.ws.once('pong', (...args) => resolve(args as [Buffer])))
  t.equal(String(pong), 'app data', 'the pong echoes the ping')
  await new Promise(resolve => client.ws.once('ping', resolve))
  t.equal(await sentTotal(t, app), 4, 'welcome, the reply, the pong and the server’s ping')
  client.close()
})
