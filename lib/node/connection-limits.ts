export interface ConnectionLimitSettings {
  /** 0: no limit. */
  maxConnections: number
  maxConnectionsPerIp: number
  maxConnectionsPerUser: number
}

export type Refusal = 'server_full' | 'connection_limit'

/** Counts open connections by address and by user, to refuse an upgrade over MAX_CONNECTIONS*. */
export class ConnectionLimits {
  private total = 0
  private readonly byIp = new Map<string, number>()
  private readonly byUser = new Map<string, number>()

  constructor (private readonly settings: ConnectionLimitSettings) {}

  /** Why an upgrade from `ip` for `user` must be refused, or undefined when it may go ahead. */
  refusal (ip: string, user: string | undefined): { code: Refusal, message: string } | undefined {
    const { maxConnections, maxConnectionsPerIp, maxConnectionsPerUser } = this.settings
    if (maxConnections > 0 && this.total >= maxConnections) return { code: 'server_full', message: `the server has its ${maxConnections} connections (MAX_CONNECTIONS)` }
    if (maxConnectionsPerIp > 0 && (this.byIp.get(ip) ?? 0) >= maxConnectionsPerIp) return { code: 'connection_limit', message: `${maxConnectionsPerIp} connections from this address at most (MAX_CONNECTIONS_PER_IP)` }
    if (user !== undefined && maxConnectionsPerUser > 0 && (this.byUser.get(user) ?? 0) >= maxConnectionsPerUser) {
      return { code: 'connection_limit', message: `${maxConnectionsPerUser} connections per user at most (MAX_CONNECTIONS_PER_USER)` }
    }
    return undefined
  }

  opened (ip: string, user: string | undefined): void {
    this.total++
    this.byIp.set(ip, (this.byIp.get(ip) ?? 0) + 1)
    if (user !== undefined) this.byUser.set(user, (this.byUser.get(user) ?? 0) + 1)
  }

  closed (ip: string, user: string | undefined): void {
    this.total--
    decrement(this.byIp, ip)
    if (user !== undefined) decrement(this.byUser, user)
  }
}

function decrement (counts: Map<string, number>, key: string): void {
  const count = (counts.get(key) ?? 1) - 1
  if (count === 0) counts.delete(key)
  else counts.set(key, count)
}
