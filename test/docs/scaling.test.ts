import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { TestClient } from '../helpers/app.js'

const script = fileURLToPath(new URL('../../docs/scaling/three-nodes.sh', import.meta.url))

/**
 * Four ports in a row that nothing listens on: the script's BASE_PORT + 1 … 3, and + 4 for its Redis. They are taken below
 * the kernel's ephemeral range: a port in it can become another test's outgoing connection in the
 * seconds before the script's nodes listen (EADDRINUSE, seen in CI).
 */
async function freeBase (): Promise<number> {
  const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
  const high = Math.min(ephemeralLow ?? 32768, 65_536) - 4
  for (;;) {
    const base = 10_000 + Math.floor(Math.random() * (high - 10_000))
    const taken = await Promise.all([1, 2, 3, 4].map(n => new Promise<boolean>(resolve => {
      const probe = createServer().once('error', () => resolve(true)).listen(base + n, '127.0.0.1', () => probe.close(() => resolve(false)))
    })))
    if (!taken.includes(true)) return base
  }
}

t.test('docs/scaling/three-nodes.sh starts three nodes over its own Redis that behave as one', async t => {
  const base = await freeBase()
  const redisPort = base + 4
  const child = spawn('bash', [script], { env: { ...process.env, BASE_PORT: String(base), REDIS_PORT: String(redisPort), API_KEY: 'docs-key' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', chunk => { output += chunk })
  child.stderr.on('data', chunk => { output += chunk })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  t.teardown(() => { child.kill('SIGKILL') })

  const nodes = async (): Promise<string[]> => {
    try {
      const response = await fetch(`http://127.0.0.1:${base + 1}/api/nodes`, { headers: { authorization: 'Bearer docs-key' } })
      return ((await response.json()) as { nodes: { id: string }[] }).nodes.map(node => node.id)
    } catch {
      return []
    }
  }
  // A node is listed once its engine runs, which is before it listens: each must also answer /readyz.
  const ready = async (port: number): Promise<boolean> => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200
    } catch {
      return false
    }
  }
  const allReady = async (): Promise<boolean> => (await Promise.all([1, 2, 3].map(n => ready(base + n)))).every(Boolean)
  const deadline = Date.now() + 30_000
  let ids: string[] = []
  while (((ids = await nodes()).length < 3 || !await allReady()) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 200))
  if (!t.same(ids, ['node-1', 'node-2', 'node-3'], 'the three nodes are listed')) t.comment(output)

  const reader = await TestClient.connect(`ws://127.0.0.1:${base + 3}/ws`)
  await reader.request({ op: 'join', room: 'docs' })
  const published = await fetch(`http://127.0.0.1:${base + 1}/api/rooms/docs/messages`, {
    method: 'POST',
    headers: { authorization: 'Bearer docs-key', 'content-type': 'application/json' },
    body: JSON.stringify({ data: 'hello from node 1' })
  })
  t.equal(published.status, 202)
  t.match(await reader.waitFor(m => m.op === 'message'), { room: 'docs', seq: 1, data: 'hello from node 1' }, 'a publish on node 1 reaches node 3')

  child.kill('SIGTERM')
  t.equal(typeof await exited, 'number', 'the script stops, and its nodes with it')
  t.equal((await reader.closed).code, 1001, 'the nodes shut down gracefully')
})
