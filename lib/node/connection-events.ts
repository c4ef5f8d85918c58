/** The part of a pino logger that connection events use. */
export interface EventLogger {
  info (fields: Record<string, unknown>, message: string): void
  warn (fields: Record<string, unknown>, message: string): void
}

interface Window {
  start: number
  logged: number
  suppressed: number
}

/**
 * Logs what the server does to a connection (closes, terminations, refused upgrades) with its reason,
 * at most `perSecond` lines per event kind: a flood of bad clients must not flood the log. The lines
 * left out are counted and reported, as `suppressed`, on the next line of that kind.
 */
export class ConnectionEvents {
  private readonly windows = new Map<string, Window>()

  constructor (
    private readonly logger: EventLogger,
    private readonly perSecond = 10,
    private readonly clock: () => number = Date.now
  ) {}

  info (event: string, fields: Record<string, unknown>, message: string): void {
    this.emit('info', event, fields, message)
  }

  warn (event: string, fields: Record<string, unknown>, message: string): void {
    this.emit('warn', event, fields, message)
  }

  private emit (level: 'info' | 'warn', event: string, fields: Record<string, unknown>, message: string): void {
    const now = this.clock()
    let window = this.windows.get(event)
    if (window === undefined) {
      window = { start: now, logged: 0, suppressed: 0 }
      this.windows.set(event, window)
    } else if (now - window.start >= 1000) {
      window.start = now
      window.logged = 0
    }
    if (window.logged >= this.perSecond) {
      window.suppressed++
      return
    }
    window.logged++
    const line: Record<string, unknown> = { event, ...fields }
    if (window.suppressed > 0) {
      line.suppressed = window.suppressed
      window.suppressed = 0
    }
    this.logger[level](line, message)
  }
}
