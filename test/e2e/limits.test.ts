import { SignJWT } from 'jose'
import t from 'tap'
import { TestClient, listenApp, upgradeOutcome } from '../helpers/app.js'

t.test('MAX_CONNECTIONS answers 503 and MAX_CONNECTIONS_PER_IP 429; a closed connection frees its place', async t => {
  const { app, url } = await listenApp(t, { maxConnections: 3, maxConnectionsPerIp: 2 })
  const first = await TestClient.connect(`${url}/ws`)
  const second = await TestClient.connect(`${url}/ws`)
  t.match(await upgradeOutcome(`${url}/ws`), { status: 429, body: { code: 'connection_limit', message: /MAX_CONNECTIONS_PER_IP/ } })
  first.close()
  await first.closed
  while (app.hub.stats().connections > 1) await new Promise(resolve => setTimeout(resolve, 5))
  const third = await TestClient.connect(`${url}/ws`)
  t.ok(third, 'a freed place is taken again')
  second.close()
  third.close()
})

t.test('MAX_CONNECTIONS counts every address', async t => {
  const { url } = await listenApp(t, { maxConnections: 1 })
  const only = await TestClient.connect(`${url}/ws`)
  t.match(await upgradeOutcome(`${url}/ws`), { status: 503, body: { code: 'server_full', message: /MAX_CONNECTIONS/ } })
  only.close()
})

t.test('MAX_CONNECTIONS_PER_USER counts connections by token sub', async t => {
  const secret = 'limits-secret-of-at-least-32-bytes'
  const { url } = await listenApp(t, { jwtSecret: secret, maxConnectionsPerUser: 1 })
  const token = (sub: string): Promise<string> => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret))
  const alice = await TestClient.connect(`${url}/ws?token=${await token('alice')}`)
  t.match(await upgradeOutcome(`${url}/ws?token=${await token('alice')}`), { status: 429, body: { code: 'connection_limit', message: /MAX_CONNECTIONS_PER_USER/ } })
  const bob = await TestClient.connect(`${url}/ws?token=${await token('bob')}`)
  t.ok(bob, 'another user is not limited by alice')
  alice.close()
  bob.close()
})
