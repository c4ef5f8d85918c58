import { randomBytes } from 'node:crypto'
import amqp from 'amqplib'
import pg from 'pg'
import type { Test } from 'tap'
import { createEngine, type BrokerKind, type HistoryKind, type StoreKind } from '../../lib/engine/create.js'
import type { Engine } from '../../lib/engine/types.js'
import type { EngineSettings } from '../engine/conformance.js'
import { REDIS_URL, redisPrefix } from './redis.js'

/** The shared PostgreSQL of the machine (and of CI): a missing one fails the tests that need it. */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** The shared NATS server (with JetStream) of the machine and of CI. */
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222'

/** The shared RabbitMQ of the machine and of CI. */
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'

/** A schema of this test process's own, dropped when the file's tests end (see dropTestSchema). */
export const TEST_SCHEMA = `sbtest_${process.pid}_${randomBytes(3).toString('hex')}`

export async function dropTestSchema (): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL })
  await client.connect()
  await client.query(`DROP SCHEMA IF EXISTS ${TEST_SCHEMA} CASCADE`)
  await client.end()
}

export interface EngineParts {
  broker: BrokerKind
  history: HistoryKind
  presence: StoreKind
  redisUrls?: string[]
  redisPrefix?: string
  amqpRouting?: 'rooms' | 'fanout'
  presenceTtlMs?: number
}

/** An engine of the given parts over the shared services, under a key prefix of its own. */
/** An exchange base name of its own, removed at the end of the file (cleanUpTestResources). */
export function testExchange (): string {
  const base = `sbtest.${randomBytes(4).toString('hex')}`
  exchanges.add(base)
  return base
}

export function testEngine (parts: EngineParts, settings: EngineSettings): Promise<Engine> {
  const amqpExchange = parts.broker === 'amqp' ? testExchange() : 'unused'
  return createEngine({
    size: settings.historySize,
    ttlMs: settings.historyTtlMs,
    maxBytes: 1 << 30,
    idempotencyTtlMs: settings.idempotencyTtlMs,
    redisUrls: [REDIS_URL],
    redisPrefix: redisPrefix(),
    redisTimeoutMs: 5000,
    presenceTtlMs: 60_000,
    positionCheckMs: 5000,
    databaseUrl: DATABASE_URL,
    databaseSchema: TEST_SCHEMA,
    databaseTimeoutMs: 5000,
    natsUrl: NATS_URL,
    natsPrefix: `sbtest${randomBytes(4).toString('hex')}`,
    amqpUrl: AMQP_URL,
    amqpExchange,
    amqpRouting: 'rooms',
    ...parts
  })
}

/** Exchange names the engines of this process declared (durable: they outlive the connection). */
const exchanges = new Set<string>()

async function deleteTestExchanges (): Promise<void> {
  if (exchanges.size === 0) return
  const connection = await amqp.connect(AMQP_URL)
  const channel = await connection.createChannel()
  for (const base of exchanges) for (const suffix of ['rooms', 'fanout', 'broadcast']) await channel.deleteExchange(`${base}.${suffix}`)
  await connection.close()
}

/** Registers, for the end of the file, the removal of what its engines left in the shared services: its schema and exchanges. */
export function cleanUpTestResources (t: Test): void {
  t.teardown(async () => {
    await dropTestSchema()
    await deleteTestExchanges()
  })
}
