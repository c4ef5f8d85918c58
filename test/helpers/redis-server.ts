import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { ServiceProcess } from './service-process.js'

/** A redis-server of the test's own, without persistence: a restart comes back empty, as a Redis that kept nothing would. */
export class RedisServer extends ServiceProcess {
  static async start (t: Test): Promise<RedisServer> {
    return await ServiceProcess.launch(t, port => new RedisServer(port, {
      command: 'redis-server',
      args: port => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'yes'],
      ready: 'Ready to accept connections'
    }))
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** A client of its own, e.g. for DEBUG SLEEP; closed when the test ends. */
  client (t: Test): Redis {
    const client = new Redis(this.url)
    client.on('error', () => {})
    t.teardown(() => { client.disconnect() })
    return client
  }
}
