import type { NodeInfo, NodeRegistry } from './types.js'

/** Where heartbeats travel: a broker's broadcast channel, with two kinds of message. */
export interface HeartbeatChannel {
  /** Fire and forget: a heartbeat that cannot go out now is the next one's job. */
  send (kind: 'beat' | 'hello', text: string): void
  listen (handler: (kind: 'beat' | 'hello', text: string) => void): () => void
}

/**
 * Live nodes without a store, over a broker (NATS, RabbitMQ): every node sends its heartbeat every
 * third of the ttl and keeps every other node's latest for 2/3 of the ttl, so a dead node is gone
 * within it. A node that starts says hello and the others beat at once; one that shuts down says
 * goodbye.
 */
export class HeartbeatNodeRegistry implements NodeRegistry {
  private self: (() => NodeInfo) | undefined
  private readonly seen = new Map<string, { info: NodeInfo, expiresAt: number }>()
  private stopListening: (() => void) | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly lifetimeMs: number

  constructor (private readonly channel: HeartbeatChannel, private readonly ttlMs: number) {
    this.lifetimeMs = Math.floor(ttlMs * 2 / 3)
  }

  announce (self: () => NodeInfo): void {
    this.self = self
    this.stopListening = this.channel.listen((kind, text) => {
      if (kind === 'hello') {
        this.beat()
        return
      }
      const beat = JSON.parse(text) as { info: NodeInfo, gone?: true }
      if (beat.gone === true) this.seen.delete(beat.info.id)
      else this.seen.set(beat.info.id, { info: beat.info, expiresAt: Date.now() + this.lifetimeMs })
    })
    this.beat()
    this.channel.send('hello', '')
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
    if (info !== undefined) this.channel.send('beat', JSON.stringify({ info, gone: true }))
    this.stopListening?.()
  }

  private beat (): void {
    const info = this.self?.()
    if (info !== undefined) this.channel.send('beat', JSON.stringify({ info }))
  }
}
