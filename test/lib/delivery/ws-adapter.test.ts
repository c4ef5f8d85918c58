import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Socket } from 'node:net'
import t, { type Test } from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { negotiatedDeflate, onPeerClose, streamOf, takeOverPongs } from '../../../lib/delivery/ws-adapter.js'
import { encodeTextFrame } from '../../../lib/delivery/frame.js'

/** A real ws server and client pair; resolves with the server's side of the connection. */
async function pair (t: Test, serverOptions: WebSocket.ServerOptions = {}, clientOptions: WebSocket.ClientOptions = {}): Promise<{ server: WebSocket, client: WebSocket }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...serverOptions })
  await once(wss, 'listening')
  t.teardown(() => new Promise<void>(resolve => {
    for (const socket of wss.clients) socket.terminate()
    wss.close(() => resolve())
  }))
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, clientOptions)
  const [server] = await once(wss, 'connection') as [WebSocket]
  await once(client, 'open')
  return { server, client }
}

// These tests pin down the private fields of `ws` that lib/delivery/ws-adapter.ts relies on: if an
// upgrade of ws renames or moves one, they fail here rather than in production.

t.test('streamOf returns the net.Socket under the WebSocket, and writes to it reach the peer as frames', async t => {
  const { server, client } = await pair(t)
  const stream = streamOf(server)
  t.ok(stream instanceof Socket)
  const received = once(client, 'message')
  stream.write(encodeTextFrame('{"hello":1}'))
  t.equal(String((await received)[0]), '{"hello":1}')
})

t.test('takeOverPongs stops ws from answering pings by itself', async t => {
  const { server, client } = await pair(t)
  const pongs: string[] = []
  client.on('pong', data => pongs.push(String(data)))
  client.ping('auto')
  await once(client, 'pong')
  t.same(pongs, ['auto'], 'ws answers on its own by default')
  takeOverPongs(server)
  const ping = once(server, 'ping')
  client.ping('taken')
  t.equal(String((await ping)[0]), 'taken', 'the ping still reaches the server as an event')
  client.ping('second')
  await once(server, 'ping')
  t.same(pongs, ['auto'], 'and no pong was sent for it')
})

t.test('onPeerClose fires when the peer’s close frame was read, after ws answered it', async t => {
  const { server, client } = await pair(t)
  const states: number[] = []
  const closed = new Promise<void>(resolve => onPeerClose(server, { peerClosed () { states.push(server.readyState); resolve() } }))
  client.close(1000)
  await closed
  t.same(states, [WebSocket.CLOSING], 'ws has sent its close frame: from here on nothing may be written')
})

t.test('negotiatedDeflate reads what the connection agreed on', async t => {
  const plain = await pair(t)
  t.equal(negotiatedDeflate(plain.server, 1024), undefined, 'no offer accepted: no compression')
  const deflate = await pair(t, { perMessageDeflate: { serverNoContextTakeover: true } }, { perMessageDeflate: true })
  t.same(negotiatedDeflate(deflate.server, 100), { windowBits: 15, threshold: 100 })
  t.equal(deflate.client.extensions, 'permessage-deflate')
  const narrow = await pair(t, { perMessageDeflate: true }, { perMessageDeflate: { serverMaxWindowBits: 10 } })
  t.same(negotiatedDeflate(narrow.server, 0), { windowBits: 10, threshold: 0 })
})
