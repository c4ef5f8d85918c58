/**
 * The listening port from PORT (required) and the interface from HOST (loopback by default). The harness
 * stops servers with SIGTERM; exiting normally on it lets a server under --cpu-prof write its profile.
 */
export function listenAddress (): { port: number, host: string } {
  const port = Number(process.env.PORT)
  if (!Number.isInteger(port) || port <= 0) throw new Error('set PORT to the port to listen on')
  process.once('SIGTERM', () => process.exit(0))
  return { port, host: process.env.HOST ?? '127.0.0.1' }
}
