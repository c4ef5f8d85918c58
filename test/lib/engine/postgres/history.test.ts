import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t from 'tap'
import { migrate } from '../../../../lib/engine/postgres/migrations.js'
import { PostgresHistory } from '../../../../lib/engine/postgres/history.js'
import { Priority } from '../../../../lib/protocol/priority.js'
import { DATABASE_URL } from '../../../helpers/engine.js'

const schema = `sbtest_pg_${process.pid}_${randomBytes(3).toString('hex')}`
const admin = new pg.Pool({ connectionString: DATABASE_URL })
t.teardown(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await admin.end()
})

t.test('N nodes migrating at once: the schema is created once and ends at the latest version', async t => {
  const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: DATABASE_URL }))
  t.teardown(() => Promise.all(pools.map(pool => pool.end())))
  await Promise.all(pools.map(pool => migrate(pool, schema)))
  const { rows } = await admin.query(`SELECT version FROM ${schema}.schema_version`)
  t.same(rows, [{ version: 1 }], 'one row, the latest version')
  await migrate(pools[0]!, schema)
  t.same((await admin.query(`SELECT version FROM ${schema}.schema_version`)).rows, [{ version: 1 }], 'migrating again changes nothing')
})

t.test('the cleanup job deletes what retention hides: messages over the count and streams that expired', async t => {
  // The cleanup runs every default ttl (3 s). Room 'kept' outlives the test, so only its count is
  // trimmed; room 'expiring' expires after 1 s and goes whole. Neither depends on when the job runs.
  const history = await PostgresHistory.open({
    databaseUrl: DATABASE_URL,
    schema,
    timeoutMs: 5000,
    size: 5,
    ttlMs: 3000,
    idempotencyTtlMs: 500,
    limitsFor: room => room === 'kept' ? { ttlMs: 60_000 } : room === 'expiring' ? { ttlMs: 1000 } : undefined
  })
  t.teardown(() => history.close())
  await Promise.all(Array.from({ length: 20 }, (_, i) => history.append({ room: 'kept', data: String(i), priority: Priority.normal, ts: i })))
  await Promise.all(Array.from({ length: 3 }, (_, i) => history.append({ room: 'expiring', data: String(i), priority: Priority.normal, ts: i, id: `id-${i}` })))
  t.same((await history.read('kept', { limit: 100 })).publications.map(p => p.seq), [16, 17, 18, 19, 20], 'reads apply the count at once')
  const count = async (sql: string): Promise<number> => Number((await admin.query(sql)).rows[0].count)
  t.equal(await count(`SELECT count(*) FROM ${schema}.messages WHERE room = 'kept'`), 20, 'before the cleanup the rows are still there')
  const deadline = Date.now() + 10_000
  while (await count(`SELECT count(*) FROM ${schema}.messages WHERE room = 'kept'`) > 5 && Date.now() < deadline) await sleep(100)
  t.equal(await count(`SELECT count(*) FROM ${schema}.messages WHERE room = 'kept'`), 5, 'the cleanup kept the last HISTORY_SIZE')
  // One cleanup run deletes the stream with its messages first and the expired ids after.
  const expiringLeft = async (): Promise<number> => await count(`SELECT count(*) FROM ${schema}.streams WHERE room = 'expiring'`) + await count(`SELECT count(*) FROM ${schema}.publish_ids WHERE room = 'expiring'`)
  while (await expiringLeft() > 0 && Date.now() < deadline) await sleep(100)
  t.equal(await count(`SELECT count(*) FROM ${schema}.streams WHERE room = 'expiring'`), 0, 'the expired stream is gone')
  t.equal(await count(`SELECT count(*) FROM ${schema}.messages WHERE room = 'expiring'`), 0, 'with its messages')
  t.equal(await count(`SELECT count(*) FROM ${schema}.publish_ids WHERE room = 'expiring'`), 0, 'and its ids')
})

t.test('publishes of one room keep their order within and across batches, and each batch is one round trip', async t => {
  const history = await PostgresHistory.open({ databaseUrl: DATABASE_URL, schema, timeoutMs: 5000, size: 5000, ttlMs: 60_000, idempotencyTtlMs: 60_000 })
  t.teardown(() => history.close())
  const appended = await Promise.all(Array.from({ length: 3000 }, (_, i) => history.append({ room: `order-${i % 3}`, data: String(i), priority: Priority.normal, ts: i })))
  for (let room = 0; room < 3; room++) {
    const mine = appended.filter(a => a.publication.room === `order-${room}`)
    t.same(mine.map(a => a.publication.seq), mine.map((_, i) => i + 1), `order-${room}: seqs in the order the publishes were made`)
  }
})

t.test('the position reads of one turn to a room are one query, and a later turn reads again', async t => {
  const history = await PostgresHistory.open({ databaseUrl: DATABASE_URL, schema, timeoutMs: 5000, size: 100, ttlMs: 60_000, idempotencyTtlMs: 60_000 })
  t.teardown(() => history.close())
  await history.append({ room: 'storm', data: '1', priority: Priority.normal, ts: 1 })
  // Its pool is private: counting the statements it is given is the point of this test.
  const pool = (history as unknown as { pool: pg.Pool }).pool
  const statements: string[] = []
  const query = pool.query.bind(pool) as (text: string, values: unknown[]) => Promise<pg.QueryResult>
  pool.query = ((text: string, values: unknown[]) => {
    statements.push(text)
    return query(text, values)
  }) as typeof pool.query
  const positions = await Promise.all(Array.from({ length: 500 }, (_, i) => history.position(i % 2 === 0 ? 'storm' : 'calm')))
  t.equal(statements.length, 2, 'one query per room for 500 joins')
  t.ok(positions.every((position, i) => position.seq === (i % 2 === 0 ? 1 : 0)), 'each join told its room\'s position')
  await history.append({ room: 'storm', data: '2', priority: Priority.normal, ts: 2 })
  t.match(await history.position('storm'), { seq: 2 }, 'the next turn reads the stream as it is now')
})

t.test('the recovering joins of a turn from the same position are one query, and each gets the replay', async t => {
  const history = await PostgresHistory.open({ databaseUrl: DATABASE_URL, schema, timeoutMs: 5000, size: 100, ttlMs: 60_000, idempotencyTtlMs: 60_000 })
  t.teardown(() => history.close())
  const { epoch } = await history.position('rejoin')
  for (let i = 1; i <= 3; i++) await history.append({ room: 'rejoin', data: String(i), priority: Priority.normal, ts: i })
  const pool = (history as unknown as { pool: pg.Pool }).pool
  let statements = 0
  const query = pool.query.bind(pool) as (text: string, values: unknown[]) => Promise<pg.QueryResult>
  pool.query = ((text: string, values: unknown[]) => {
    statements++
    return query(text, values)
  }) as typeof pool.query
  const recoveries = await Promise.all(Array.from({ length: 300 }, () => history.recover('rejoin', { epoch, seq: 1 }, 100)))
  t.equal(statements, 1)
  t.ok(recoveries.every(r => r.recovered && r.publications.map(p => p.data).join() === '2,3'), 'every join gets what it missed')
})
