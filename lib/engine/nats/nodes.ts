import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import type { NodeInfo, NodeRegistry } from '../types.js'

const decoder = new TextDecoder()

/**
 * Live nodes over NATS, without a store: every node publishes its heartbeat every third of the ttl and
 * keeps the latest heartbeat of every other node for 2/3 of the ttl, so a dead node is gone within it.
 * A node that starts asks the others to beat at once, and one that shuts down says goodbye.
 */
export class NatsNodeRegistry implements NodeRegistry {
  private self: (() => NodeInfo) | undefined
  private readonly seen = new Map<string, { info: NodeInfo, expiresAt: number }>()
  private readonly subscriptions: Subscription[] = []
  private timer: NodeJS.Timeout | undefined
  private readonly lifetimeMs: number

  constructor (private readonly connection: NatsConnection, private readonly prefix: string, private readonly ttlMs: number) {
    this.lifetimeMs = Math.floor(ttlMs * 2 / 3)
  }

  announce (self: () => NodeInfo): void {
    this.self = self
    this.subscriptions.push(this.connection.subscribe(`${this.prefix}.nodes.beat`, {
      callback: (error, message) => {
        if (error !== null) return
        const beat = JSON.parse(decoder.decode(message.data)) as { info: NodeInfo, gone?: true }
        if (beat.gone === true) this.seen.delete(beat.info.id)
        else this.seen.set(beat.info.id, { info: beat.info, expiresAt: Date.now() + this.lifetimeMs })
      }
    }))
    this.subscriptions.push(this.connection.subscribe(`${this.prefix}.nodes.hello`, { callback: () => { this.beat() } }))
    this.beat()
    this.safePublish(`${this.prefix}.nodes.hello`, '')
    this.timer = setInterval(() => { this.beat() }, Math.max(100, Math.floor(this.ttlMs / 3)))
    this.timer.unref()
  }

  list (): NodeInfo[] {
    const now = Date.now()
    for (const [id, entry] of this.seen) if (entry.expiresAt < now) this.seen.delete(id)
    return Array.from(this.seen.values(), entry => entry.info).sort((a, b) => a.id < b.id ? -1 : 1)
  }

  close (): void {
    clearInterval(this.timer)
    const info = this.self?.()
    this.self = undefined
    if (info !== undefined) this.safePublish(`${this.prefix}.nodes.beat`, JSON.stringify({ info, gone: true }))
    for (const subscription of this.subscriptions) subscription.unsubscribe()
  }

  private beat (): void {
    const info = this.self?.()
    if (info !== undefined) this.safePublish(`${this.prefix}.nodes.beat`, JSON.stringify({ info }))
  }

  /** A heartbeat that cannot go out now is simply the next one's job. */
  private safePublish (subject: string, text: string): void {
    try {
      this.connection.publish(subject, text)
    } catch {}
  }
}
