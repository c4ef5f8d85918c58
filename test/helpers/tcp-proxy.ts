import { createServer, connect, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy a fault test controls: `cut()` drops every connection through it and refuses new ones
 * until `restore()`, so a service looks unreachable while it keeps running and keeps its data.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>()
  private cutOff = false
  private constructor (private readonly server: Server, readonly port: number) {}

  static async start (targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined
    const server = createServer(client => {
      if (proxy === undefined || proxy.cutOff) {
        client.destroy()
        return
      }
      const upstream = connect(targetPort, '127.0.0.1')
      for (const socket of [client, upstream]) {
        proxy.sockets.add(socket)
        socket.on('close', () => { proxy?.sockets.delete(socket) })
        socket.on('error', () => { client.destroy(); upstream.destroy() })
      }
      client.pipe(upstream)
      upstream.pipe(client)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('proxy has no port')
    proxy = new TcpProxy(server, address.port)
    return proxy
  }

  cut (): void {
    this.cutOff = true
    for (const socket of this.sockets) socket.destroy()
  }

  restore (): void {
    this.cutOff = false
  }

  async close (): Promise<void> {
    this.cut()
    await new Promise(resolve => this.server.close(resolve))
  }
}
