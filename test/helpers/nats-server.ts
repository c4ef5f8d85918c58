import { spawn, type ChildProcess } from 'node:child_process'
import type { Test } from 'tap'
import { freePort } from './redis-server.js'

/** A nats-server of the test's own on a free port (never the shared one), stopped when the test ends. */
export class NatsServer {
  private process: ChildProcess | undefined
  private constructor (readonly port: number) {}

  static async start (t: Test): Promise<NatsServer> {
    const server = new NatsServer(await freePort())
    await server.restart()
    t.teardown(() => server.stop())
    return server
  }

  get url (): string {
    return `nats://127.0.0.1:${this.port}`
  }

  /** Starts it (again) and resolves once it accepts clients. */
  async restart (): Promise<void> {
    await this.stop()
    const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(this.port)], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.process = child
    await new Promise<void>((resolve, reject) => {
      let output = ''
      child.stderr?.on('data', chunk => {
        output += chunk
        if (output.includes('Server is ready')) resolve()
      })
      child.once('exit', code => reject(new Error(`nats-server exited with ${code}: ${output}`)))
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
}
