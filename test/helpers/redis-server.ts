import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import type { Test } from 'tap'
import { Redis } from 'ioredis'

/** A port nothing listens on right now. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise(resolve => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/**
 * A redis-server of the test's own on a free port (never the shared one), without persistence: a
 * restart comes back empty, as a Redis that kept nothing would.
 */
export class RedisServer {
  private process: ChildProcess | undefined
  private constructor (readonly port: number) {}

  static async start (t: Test): Promise<RedisServer> {
    const server = new RedisServer(await freePort())
    await server.restart()
    t.teardown(() => server.stop())
    return server
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** Starts it (again, empty) and resolves once it answers PING. */
  async restart (): Promise<void> {
    await this.stop()
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'yes'], { stdio: ['ignore', 'pipe', 'inherit'] })
    this.process = child
    await new Promise<void>((resolve, reject) => {
      let output = ''
      child.stdout?.on('data', chunk => {
        output += chunk
        if (output.includes('Ready to accept connections')) resolve()
      })
      child.once('exit', code => reject(new Error(`redis-server exited with ${code}: ${output}`)))
    })
  }

  async stop (): Promise<void> {
    const child = this.process
    this.process = undefined
    if (child === undefined || child.exitCode !== null) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  /** A client of its own, e.g. for DEBUG SLEEP; closed when the test ends. */
  client (t: Test): Redis {
    const client = new Redis(this.url)
    client.on('error', () => {})
    t.teardown(() => { client.disconnect() })
    return client
  }
}
