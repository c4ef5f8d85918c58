import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface NodeProcess {
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  output (): string
}

/** `server.ts` (the npm start entry) in a process of its own, with only the given environment. */
export function startProcess (env: Record<string, string>): NodeProcess {
  const child = spawn(process.execPath, ['--import=tsx', 'server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', WORKERS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout?.on('data', chunk => { output += chunk })
  child.stderr?.on('data', chunk => { output += chunk })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  return { child, exited, output: () => output }
}

/** Resolves with the port once the server logged that it listens. */
export function listening (server: NodeProcess, timeoutMs = 20_000): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const check = (): boolean => {
      const match = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(server.output())
      if (match === null) return false
      clearTimeout(timer)
      resolve(Number(match[1]))
      return true
    }
    const timer = setTimeout(() => reject(new Error(`no listen line: ${server.output()}`)), timeoutMs)
    void server.exited.then(code => reject(new Error(`exited with ${code} before listening: ${server.output()}`)))
    if (!check()) server.child.stdout?.on('data', check)
  })
}

/** The live-state gauges of a node process, as its /metrics reports them. */
export async function processLiveState (port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) })).text()
  const gauge = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
  return {
    connections: gauge('ws_active_connections'),
    rooms: gauge('ws_rooms'),
    memberships: gauge('ws_room_memberships'),
    outboxes: gauge('ws_outboxes'),
    queued: gauge('ws_send_queue_length'),
    presenceMembers: gauge('ws_presence_members'),
    queuedTasks: gauge('ws_worker_queue_length')
  }
}

/**
 * A listening server process, killed when the test ends. If it is still running then, it must hold
 * nothing for the test's clients, which were closed before (teardowns run last registered first).
 */
export async function startNode (t: Test, env: Record<string, string>): Promise<NodeProcess & { port: number, url: string }> {
  const server = startProcess({ PORT: '0', LOG_LEVEL: 'info', ...env })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = await listening(server)
  t.teardown(async () => {
    if (server.child.killed || server.child.exitCode !== null) return
    const deadline = Date.now() + 5000
    for (;;) {
      const left = Object.entries(await processLiveState(port)).filter(([, value]) => value !== 0)
      if (left.length === 0) return
      if (Date.now() > deadline) throw new Error(`live state left on the node at ${port} after its clients closed: ${JSON.stringify(Object.fromEntries(left))}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  })
  return { ...server, port, url: `127.0.0.1:${port}` }
}
