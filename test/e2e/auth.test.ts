import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT, UnsecuredJWT, exportJWK, type JWK } from 'jose'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { TestClient, listenApp } from '../helpers/app.js'

const SECRET = 'a-test-secret-of-enough-length-32b'
const secretKey = new TextEncoder().encode(SECRET)

function sign (claims: Record<string, unknown>, { key = secretKey as Uint8Array | CryptoKey | import('node:crypto').KeyObject, alg = 'HS256', kid, exp = '1h' }: { key?: Uint8Array | CryptoKey | import('node:crypto').KeyObject, alg?: string, kid?: string, exp?: string | number } = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader(kid === undefined ? { alg } : { alg, kid }).setIssuedAt()
  if (exp !== 0) jwt.setExpirationTime(exp)
  return jwt.sign(key)
}

/** The outcome of one upgrade: 'open', or the HTTP status and body of the refusal. */
function upgrade (url: string, options: WebSocket.ClientOptions & { protocols?: string[] } = {}): Promise<{ status: number | 'open', body?: Record<string, unknown>, ws?: WebSocket }> {
  return new Promise(resolve => {
    const ws = new WebSocket(url, options.protocols ?? [], options)
    ws.once('open', () => resolve({ status: 'open', ws }))
    ws.once('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => { body += chunk.toString() })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown> }))
    })
    ws.once('error', () => {})
  })
}

async function refused (t: Test, url: string, label: string, options: WebSocket.ClientOptions & { protocols?: string[] } = {}): Promise<void> {
  const outcome = await upgrade(url, options)
  t.equal(outcome.status, 401, `${label}: 401`)
  t.match(outcome.body, { code: 'unauthorized', message: String }, `${label}: {code, message}`)
}

t.test('JWT_SECRET: a valid token is accepted from the query, the protocol header or Authorization; bad ones get 401 and no socket', async t => {
  const { app, url } = await listenApp(t, { jwtSecret: SECRET, jwtIssuer: 'auth.example', jwtAudience: 'switchboard' })
  const good = await sign({ sub: 'alice', iss: 'auth.example', aud: 'switchboard' })
  const viaQuery = await upgrade(`${url}/ws?token=${good}`)
  t.equal(viaQuery.status, 'open', 'via ?token=')
  const viaProtocol = await upgrade(`${url}/ws`, { protocols: ['switchboard', good] })
  t.equal(viaProtocol.status, 'open', 'via Sec-WebSocket-Protocol')
  t.equal(viaProtocol.ws?.protocol, 'switchboard', 'the protocol echoed is the one offered first, not the token')
  const viaHeader = await upgrade(`${url}/ws`, { headers: { authorization: `Bearer ${good}` } })
  t.equal(viaHeader.status, 'open', 'via Authorization: Bearer')
  for (const outcome of [viaQuery, viaProtocol, viaHeader]) outcome.ws?.close()
  await new Promise(resolve => setTimeout(resolve, 50))
  const before = app.hub.stats().connections

  await refused(t, `${url}/ws`, 'no token')
  await refused(t, `${url}/ws?token=${await sign({ sub: 'alice', iss: 'auth.example', aud: 'switchboard' }, { key: new TextEncoder().encode('another-secret-another-secret-xx') })}`, 'forged signature')
  await refused(t, `${url}/ws?token=${new UnsecuredJWT({ sub: 'alice', iss: 'auth.example', aud: 'switchboard' }).setIssuedAt().setExpirationTime('1h').encode()}`, 'alg none')
  await refused(t, `${url}/ws?token=${await sign({ sub: 'alice', iss: 'auth.example', aud: 'switchboard' }, { exp: Math.floor(Date.now() / 1000) - 60 })}`, 'expired')
  await refused(t, `${url}/ws?token=${await sign({ sub: 'alice', iss: 'auth.example', aud: 'switchboard', nbf: Math.floor(Date.now() / 1000) + 600 })}`, 'not yet valid')
  await refused(t, `${url}/ws?token=${await sign({ sub: 'alice', iss: 'evil.example', aud: 'switchboard' })}`, 'wrong iss')
  await refused(t, `${url}/ws?token=${await sign({ sub: 'alice', iss: 'auth.example', aud: 'other' })}`, 'wrong aud')
  await refused(t, `${url}/ws?token=${await sign({ iss: 'auth.example', aud: 'switchboard' })}`, 'missing sub')
  await refused(t, `${url}/ws?token=not.a.jwt`, 'garbage')
  t.equal(app.hub.stats().connections, before, 'no refused upgrade made a connection')
})

t.test('ALLOW_ANONYMOUS=true lets connections without a token in, but not with a bad one', async t => {
  const { url } = await listenApp(t, { jwtSecret: SECRET, allowAnonymous: true })
  const anonymous = await upgrade(`${url}/ws`)
  t.equal(anonymous.status, 'open')
  anonymous.ws?.close()
  await refused(t, `${url}/ws?token=${await sign({ sub: 'x' }, { key: new TextEncoder().encode('wrong-wrong-wrong-wrong-wrong-wr') })}`, 'a bad token')
})

t.test('JWT_PUBLIC_KEY: RS256 verifies, and an HS256 token made with the public key as its secret is refused', async t => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string
  const file = join(mkdtempSync(join(tmpdir(), 'jwt-')), 'public.pem')
  writeFileSync(file, pem)
  const { url } = await listenApp(t, { jwtPublicKey: file })
  const good = await upgrade(`${url}/ws?token=${await sign({ sub: 'bob' }, { key: privateKey, alg: 'RS256' })}`)
  t.equal(good.status, 'open')
  good.ws?.close()
  await refused(t, `${url}/ws?token=${await sign({ sub: 'bob' }, { key: new TextEncoder().encode(pem), alg: 'HS256' })}`, 'algorithm confusion')
})

t.test('JWKS_URL: keys are fetched, a rotated kid is refetched, and an endpoint that hangs only fails its tokens', async t => {
  const first = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const second = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const published: JWK[] = [{ ...(await exportJWK(first.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }]
  let hang = false
  let fetches = 0
  const jwks: Server = createServer((_request, response) => {
    fetches++
    if (hang) return
    response.setHeader('content-type', 'application/json')
    response.end(JSON.stringify({ keys: published }))
  })
  await new Promise<void>(resolve => jwks.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { jwks.closeAllConnections(); jwks.close() })
  const { app, url } = await listenApp(t, { jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json` })
  const one = await upgrade(`${url}/ws?token=${await sign({ sub: 'carol' }, { key: first.privateKey, alg: 'ES256', kid: 'k1' })}`)
  t.equal(one.status, 'open')
  one.ws?.close()
  published.push({ ...(await exportJWK(second.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' })
  await new Promise(resolve => setTimeout(resolve, 1100)) // the refetch cool-down
  const rotated = await upgrade(`${url}/ws?token=${await sign({ sub: 'carol' }, { key: second.privateKey, alg: 'ES256', kid: 'k2' })}`)
  t.equal(rotated.status, 'open', 'an unknown kid refetches the key set')
  rotated.ws?.close()
  t.equal(fetches, 2)
  hang = true
  await new Promise(resolve => setTimeout(resolve, 1100))
  const started = Date.now()
  await refused(t, `${url}/ws?token=${await sign({ sub: 'carol' }, { key: second.privateKey, alg: 'ES256', kid: 'k3' })}`, 'an unknown kid while the endpoint hangs')
  t.ok(Date.now() - started < 10_000, 'within the fetch timeout')
  t.equal((await app.inject('/healthz')).statusCode, 200, 'the server kept serving')
})

t.test('the token’s sub is the user in presence and on messages; its info is shown in presence', async t => {
  const { url } = await listenApp(t, { jwtSecret: SECRET })
  const alice = await TestClient.connect(`${url}/ws?token=${await sign({ sub: 'alice', info: { name: 'Alice' } })}`)
  await alice.request({ op: 'join', room: 'r' })
  await alice.request({ op: 'publish', room: 'r', data: 'hi' })
  t.match(await alice.op('message'), { data: 'hi', user: 'alice' })
  t.match(await alice.request({ op: 'presence', room: 'r' }), { members: [{ user: 'alice', info: { name: 'Alice' } }] })
  t.match(await alice.request({ op: 'history', room: 'r' }), { messages: [{ data: 'hi', user: 'alice' }] })
  alice.close()
})

t.test('a connection closes with 4001 at its token’s exp, unless a refresh for the same sub moved it', async t => {
  const { url } = await listenApp(t, { jwtSecret: SECRET, jwtClockToleranceS: 0 })
  const soon = Math.floor(Date.now() / 1000) + 2
  const expiring = await TestClient.connect(`${url}/ws?token=${await sign({ sub: 'dave' }, { exp: soon })}`)
  const refreshed = await TestClient.connect(`${url}/ws?token=${await sign({ sub: 'erin' }, { exp: soon })}`)
  t.match(await refreshed.request({ op: 'refresh', token: await sign({ sub: 'mallory' }) }), { op: 'error', code: 'forbidden' }, 'another sub is refused')
  t.match(await refreshed.request({ op: 'refresh', token: 'garbage' }), { op: 'error', code: 'unauthorized' })
  t.match(await refreshed.request({ op: 'refresh', token: await sign({ sub: 'erin' }, { exp: '1h' }) }), { op: 'reply', ok: true, expiresAt: Number })
  t.same(await expiring.closed, { code: 4001, reason: 'token expired' })
  t.same(await refreshed.request({ op: 'ping' }), { op: 'pong', ref: 4 }, 'the refreshed one is still open after the first exp')
  refreshed.close()
})
