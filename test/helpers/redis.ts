import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'

/** The shared Redis of the machine (and of CI): a missing one fails the tests that need it. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A key prefix of its own per test, so tests sharing one Redis never see each other's rooms. */
export function redisPrefix (): string {
  return `sbtest:${process.pid}:${randomBytes(4).toString('hex')}:`
}

/** The scripts that Redis ran on keys under `prefix` while `work` ran, by the key they were given first. */
export async function scriptsRun (prefix: string, work: () => Promise<unknown>): Promise<Map<string, number>> {
  const watcher = new Redis(REDIS_URL)
  const monitor = await watcher.monitor()
  const byKey = new Map<string, number>()
  const sentinel = `${prefix}sentinel`
  let sawSentinel!: () => void
  const seen = new Promise<void>(resolve => { sawSentinel = resolve })
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[1] === sentinel) sawSentinel()
    const key = args[3]
    if ((args[0] === 'evalsha' || args[0] === 'eval') && key?.startsWith(prefix) === true) byKey.set(key, (byKey.get(key) ?? 0) + 1)
  })
  const admin = new Redis(REDIS_URL)
  try {
    await work()
    // MONITOR reports in the order Redis ran the commands: once it shows this one, it showed the work's.
    await admin.get(sentinel)
    await seen
  } finally {
    admin.disconnect()
    monitor.disconnect()
    watcher.disconnect()
  }
  return byKey
}
