import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { TestClient } from './app.js'

export type Message = Record<string, unknown> & { op: string }

/** A protocol client of the node, past its welcome; closed when the test ends. */
export async function connect (t: Test, node: { port: number }): Promise<TestClient> {
  const client = await TestClient.connect(`ws://127.0.0.1:${node.port}/ws`)
  t.teardown(() => { client.close() })
  await client.op('welcome')
  return client
}

/** The next `count` messages of the room, as they arrive. */
export async function messages (client: TestClient, room: string, count: number, timeoutMs = 10_000): Promise<Message[]> {
  const got: Message[] = []
  while (got.length < count) got.push(await client.waitFor(m => m.op === 'message' && m.room === room, timeoutMs))
  return got
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

export async function readiness (node: { port: number }): Promise<number> {
  return (await fetch(`http://127.0.0.1:${node.port}/readyz`)).status
}

/** Polls /readyz until it answers `status` (readiness follows the engine's connections). */
export async function untilReadiness (node: { port: number }, status: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (await readiness(node) !== status) {
    if (Date.now() > deadline) throw new Error(`/readyz never answered ${status}`)
    await sleep(50)
  }
}
