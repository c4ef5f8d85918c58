import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import type { Test } from 'tap'

/** A port nothing listens on right now. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise(resolve => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

export interface ServiceDefinition {
  command: string
  args (port: number): string[]
  /** What the server prints once it accepts clients. */
  ready: string
}

/**
 * A service (redis-server, nats-server) of the test's own on a free port, never the machine's shared
 * one, so a fault test can stop and restart it; stopped when the test ends.
 */
export class ServiceProcess {
  private process: ChildProcess | undefined
  protected constructor (readonly port: number, private readonly definition: ServiceDefinition) {}

  protected static async launch<S extends ServiceProcess> (t: Test, make: (port: number) => S): Promise<S> {
    const service = make(await freePort())
    await service.restart()
    t.teardown(() => service.stop())
    return service
  }

  /** Starts it (again, with nothing kept) and resolves once it accepts clients. */
  async restart (): Promise<void> {
    await this.stop()
    const child = spawn(this.definition.command, this.definition.args(this.port), { stdio: ['ignore', 'pipe', 'pipe'] })
    this.process = child
    await new Promise<void>((resolve, reject) => {
      let output = ''
      const watch = (chunk: Buffer): void => {
        output += chunk.toString()
        if (output.includes(this.definition.ready)) resolve()
      }
      child.stdout?.on('data', watch)
      child.stderr?.on('data', watch)
      child.once('exit', code => reject(new Error(`${this.definition.command} exited with ${code}: ${output}`)))
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
