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

/** A listening server process, killed when the test ends. */
export async function startNode (t: Test, env: Record<string, string>): Promise<NodeProcess & { port: number, url: string }> {
  const server = startProcess({ PORT: '0', LOG_LEVEL: 'info', ...env })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = await listening(server)
  return { ...server, port, url: `127.0.0.1:${port}` }
}
