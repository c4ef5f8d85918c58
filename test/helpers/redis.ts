import { randomBytes } from 'node:crypto'

/** The shared Redis of the machine (and of CI): a missing one fails the tests that need it. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A key prefix of its own per test, so tests sharing one Redis never see each other's rooms. */
export function redisPrefix (): string {
  return `sbtest:${process.pid}:${randomBytes(4).toString('hex')}:`
}
