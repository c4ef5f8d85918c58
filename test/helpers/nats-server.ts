import type { Test } from 'tap'
import { ServiceProcess } from './service-process.js'

/** A nats-server of the test's own. */
export class NatsServer extends ServiceProcess {
  static async start (t: Test): Promise<NatsServer> {
    return await ServiceProcess.launch(t, port => new NatsServer(port, {
      command: 'nats-server',
      args: port => ['-a', '127.0.0.1', '-p', String(port)],
      ready: 'Server is ready'
    }))
  }

  get url (): string {
    return `nats://127.0.0.1:${this.port}`
  }
}
