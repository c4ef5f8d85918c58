import type { AddressInfo, Socket } from 'node:net'
import fastifyWebsocket from '@fastify/websocket'
import Fastify from 'fastify'
import t from 'tap'
import switchboard from '../../app.js'
import { TestClient } from '../helpers/app.js'

function rawSocket (client: TestClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket
}

const API_KEY = 'drain-key'

/**
 * The same drain in both modes: Switchboard with its own @fastify/websocket, and embedded under a
 * prefix into a host that registered @fastify/websocket first (whose preClose closes every socket it
 * tracks before Switchboard's drain runs).
 */
for (const hostWebsocket of [false, true]) {
  t.test(`shutdown drains every queued critical message, then closes with 1001 (${hostWebsocket ? 'host' : 'own'} @fastify/websocket)`, async t => {
    const host = Fastify({ logger: false })
    if (hostWebsocket) {
      await host.register(fastifyWebsocket)
      host.get('/host-ws', { websocket: true }, () => {})
    }
    const prefix = hostWebsocket ? '/rt' : ''
    await host.register(switchboard, {
      prefix,
      env: {},
      workers: 1,
      apiKey: API_KEY,
      shutdownTimeoutMs: 10_000,
      writeHighWater: 4096,
      sendQueueSize: 10_000,
      sendQueueBytes: 16 * 1024 * 1024
    })
    await host.listen({ host: '127.0.0.1', port: 0 })
    const base = `127.0.0.1:${(host.server.address() as AddressInfo).port}${prefix}`

    const client = await TestClient.connect(`ws://${base}/ws`)
    await client.request({ op: 'join', room: 'drain' })
    const hostClient = hostWebsocket ? await TestClient.connect(`ws://127.0.0.1:${(host.server.address() as AddressInfo).port}/host-ws`) : undefined
    rawSocket(client).pause()

    const total = 2000
    for (let i = 1; i <= total; i++) {
      const response = await host.inject({
        method: 'POST',
        url: `${prefix}/api/rooms/drain/messages`,
        headers: { authorization: `Bearer ${API_KEY}` },
        payload: { data: { i, pad: 'p'.repeat(200) }, priority: 'critical' }
      })
      if (response.statusCode !== 202) throw new Error(`publish ${i}: ${response.statusCode} ${response.body}`)
    }

    const closing = host.close()
    // /readyz during the drain, over a real connection that was open before the close began.
    const readyz = await fetch(`http://${base}/readyz`).then(r => r.status, () => 'refused')
    t.equal(readyz, 503, '/readyz answers 503 while draining')

    rawSocket(client).resume()
    const seqs: number[] = []
    for (let i = 0; i < total; i++) seqs.push((await client.op('message')).seq as number)
    const { code, reason } = await client.closed
    await closing
    t.equal(seqs.length, total, `all ${total} queued critical messages arrived`)
    t.ok(seqs.every((seq, i) => seq === i + 1), 'in order, none twice')
    t.equal(code, 1001, 'closed with 1001 after the last message')
    t.equal(reason, 'server shutting down')
    if (hostClient !== undefined) {
      const hostClosed = await hostClient.closed
      t.not(hostClosed.code, 1001, 'the host’s own WebSocket route is still closed by the host')
    }
  })
}
