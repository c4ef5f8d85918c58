import type { AddressInfo } from 'node:net'
import fastifyWebsocket from '@fastify/websocket'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import WebSocket from 'ws'
import switchboard, { type SwitchboardOptions } from '../../app.js'

/**
 * Builds the app with test-friendly settings; the machine's environment does not leak in.
 * `injectWS` is decorated by whoever registers @fastify/websocket, so tests that inject register it
 * at the root, as a host would, and Switchboard reuses it.
 */
export async function buildApp (t: Test, options: SwitchboardOptions = {}, { hostWebsocket = true } = {}): Promise<FastifyInstance> {
  return (await buildRoot(t, options, hostWebsocket)).app
}

async function buildRoot (t: Test, options: SwitchboardOptions, hostWebsocket: boolean): Promise<{ root: FastifyInstance, app: FastifyInstance }> {
  const root = Fastify({ logger: false })
  if (hostWebsocket) await root.register(fastifyWebsocket, { options: { maxPayload: options.maxPayload ?? 65536 } })
  // injectWS streams never finish a close handshake, so their shutdown ends at the timeout: keep it short.
  const switchboardOptions = { env: {}, workers: 1, heartbeatMs: 60_000, shutdownTimeoutMs: hostWebsocket ? 300 : 5_000, ...options }
  // The app is encapsulated; tests look inside (hub, outbox, ...) through the instance it runs in.
  let app: FastifyInstance | undefined
  root.addHook('onRegister', (instance, registered) => {
    if (registered === switchboardOptions) app = instance
  })
  await root.register(switchboard, switchboardOptions)
  await root.ready()
  t.teardown(() => root.close())
  if (app === undefined) throw new Error('the switchboard instance was not found')
  return { root, app }
}

/** What the app holds for connections: all of it must be gone once every client left. */
export function liveState (app: FastifyInstance): Record<string, number> {
  const { connections, rooms, memberships } = app.hub.stats()
  return { connections, rooms, memberships, outboxes: app.outbox.live.size, presenceMembers: app.engine.presence.stats().members, queuedTasks: app.workerPool.queueLength }
}

/** Waits (2 s at most) for every live-state counter to reach zero; throws naming those that did not. */
export async function assertIdle (app: FastifyInstance): Promise<void> {
  const deadline = Date.now() + 2000
  for (;;) {
    const left = Object.entries(liveState(app)).filter(([, value]) => value !== 0)
    if (left.length === 0) return
    if (Date.now() > deadline) throw new Error(`live state left after every client closed: ${JSON.stringify(Object.fromEntries(left))}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/**
 * Builds and listens on a free loopback port; returns the ws:// base URL. Once the test's own teardowns
 * closed its clients (they run first), the app must hold nothing for them.
 */
export async function listenApp (t: Test, options: SwitchboardOptions = {}): Promise<{ app: FastifyInstance, url: string }> {
  const { root, app } = await buildRoot(t, options, false)
  t.teardown(() => assertIdle(app))
  await root.listen({ host: '127.0.0.1', port: 0 })
  const { port } = root.server.address() as AddressInfo
  return { app, url: `ws://127.0.0.1:${port}` }
}

type Message = Record<string, unknown> & { op: string }

/**
 * A protocol client for tests: keeps every frame it received, lets a test wait for the first one that
 * matches, and sends ops with fresh refs.
 */
export class TestClient {
  readonly received: Message[] = []
  readonly closed: Promise<{ code: number, reason: string }>
  private waiters: { match: (m: Message) => boolean, resolve: (m: Message) => void }[] = []
  private nextRef = 0

  constructor (readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as Message
      const waiter = this.waiters.find(w => w.match(message))
      if (waiter !== undefined) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        waiter.resolve(message)
      } else {
        this.received.push(message)
      }
    })
    this.closed = new Promise(resolve => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  }

  static async connect (url: string, options?: WebSocket.ClientOptions): Promise<TestClient> {
    const ws = new WebSocket(url, options)
    const client = new TestClient(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    return client
  }

  /** The first received (or future) frame that matches; it is consumed. */
  waitFor (match: (m: Message) => boolean, timeoutMs = 3000): Promise<Message> {
    const index = this.received.findIndex(match)
    if (index !== -1) return Promise.resolve(this.received.splice(index, 1)[0] as Message)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms; received ${JSON.stringify(this.received.slice(-5))}`)), timeoutMs)
      this.waiters.push({ match, resolve: m => { clearTimeout(timer); resolve(m) } })
    })
  }

  op (op: string): Promise<Message> {
    return this.waitFor(m => m.op === op)
  }

  send (frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** Sends the op with a fresh ref and resolves with the reply or error carrying it. */
  request (op: Record<string, unknown>): Promise<Message> {
    const ref = ++this.nextRef
    this.send({ ...op, ref })
    return this.waitFor(m => m.ref === ref)
  }

  close (): void {
    this.ws.close()
  }
}

/** Opens a WebSocket through injectWS (no listening socket) and wraps it before any frame can arrive. */
export async function injectClient (app: FastifyInstance, path = '/ws', headers: Record<string, string> = {}): Promise<TestClient> {
  let client: TestClient | undefined
  await app.injectWS(path, { headers }, { onInit: ws => { client = new TestClient(ws) } })
  return client as TestClient
}

/** How an upgrade ends: 101 when it opened (the socket is closed again), else the HTTP status and body of the refusal. */
export function upgradeOutcome (url: string, protocols: string[] = [], options: WebSocket.ClientOptions = {}): Promise<{ status: number, body?: Record<string, unknown> }> {
  return new Promise(resolve => {
    const ws = new WebSocket(url, protocols, options)
    ws.once('open', () => { ws.close(); resolve({ status: 101 }) })
    ws.once('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => { body += chunk.toString() })
      response.on('end', () => {
        let parsed: Record<string, unknown> | undefined
        try { parsed = JSON.parse(body) as Record<string, unknown> } catch { parsed = undefined }
        resolve({ status: response.statusCode ?? 0, body: parsed })
      })
    })
    ws.once('error', () => {})
  })
}
