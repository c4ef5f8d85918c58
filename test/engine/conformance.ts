import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { Broadcast, Engine, PresenceEvent, Publication, PublishRequest } from '../../lib/engine/types.js'
import { Priority } from '../../lib/protocol/priority.js'

export interface EngineSettings {
  historySize: number
  historyTtlMs: number
  idempotencyTtlMs: number
}

/** Makes a fresh engine (its own rooms) for one test; the suite closes it. */
export type EngineFactory = (settings: EngineSettings) => Promise<Engine> | Engine

const DEFAULTS: EngineSettings = { historySize: 100, historyTtlMs: 60_000, idempotencyTtlMs: 60_000 }

let roomCounter = 0
/** A room name no earlier test used, so engines with shared storage need no cleanup between tests. */
function freshRoom (): string {
  return `conformance-${process.pid}-${Date.now().toString(36)}-${++roomCounter}`
}

function request (room: string, data: unknown, extra: Partial<PublishRequest> = {}): PublishRequest {
  return { room, data: JSON.stringify(data), priority: Priority.normal, ts: Date.now(), ...extra }
}

interface Delivered {
  publications: Publication[]
  broadcasts: Broadcast[]
  presence: PresenceEvent[]
  /** Resolves once `count` publications of `room` were handed to this node. */
  until (room: string, count: number): Promise<Publication[]>
}

async function setup (t: Test, factory: EngineFactory, settings: Partial<EngineSettings> = {}): Promise<{ engine: Engine, delivered: Delivered }> {
  const engine = await factory({ ...DEFAULTS, ...settings })
  t.teardown(() => engine.close())
  const waiters: { room: string, count: number, resolve: (p: Publication[]) => void }[] = []
  const delivered: Delivered = {
    publications: [],
    broadcasts: [],
    presence: [],
    until (room, count) {
      const mine = this.publications.filter(p => p.room === room)
      if (mine.length >= count) return Promise.resolve(mine)
      return new Promise(resolve => waiters.push({ room, count, resolve }))
    }
  }
  engine.broker.handle({
    publication (publication) {
      delivered.publications.push(publication)
      for (const waiter of [...waiters]) {
        const mine = delivered.publications.filter(p => p.room === waiter.room)
        if (mine.length >= waiter.count) {
          waiters.splice(waiters.indexOf(waiter), 1)
          waiter.resolve(mine)
        }
      }
    },
    broadcast (broadcast) { delivered.broadcasts.push(broadcast) },
    presence (event) { delivered.presence.push(event) },
    epoch () {},
    lost () {}
  })
  return { engine, delivered }
}

/**
 * Every guarantee of docs/protocol.md that an engine carries, checked against one engine factory. A
 * new engine is done when this suite passes against it unchanged.
 */
export function engineConformance (name: string, factory: EngineFactory): void {
  t.test(`${name}: seq starts at 1 and grows by 1 per message, per room, with one epoch`, async t => {
    const { engine, delivered } = await setup(t, factory)
    const room = freshRoom()
    const other = freshRoom()
    await engine.broker.subscribe(room)
    await engine.broker.subscribe(other)
    const before = await engine.history.position(room)
    t.equal(before.seq, 0, 'a new stream is at 0')
    const outcomes = []
    for (let i = 1; i <= 50; i++) outcomes.push(await engine.publish(request(room, i)))
    t.same(outcomes.map(o => o.seq), Array.from({ length: 50 }, (_, i) => i + 1), 'no holes, none reused')
    t.ok(outcomes.every(o => o.epoch === before.epoch && !o.duplicate), 'the epoch the position reported')
    t.equal((await engine.publish(request(other, 'x'))).seq, 1, 'another room has its own seq')
    const got = await delivered.until(room, 50)
    t.same(got.map(p => p.seq), outcomes.map(o => o.seq), 'the broker hands every publication over once, in seq order')
    t.same(got.map(p => JSON.parse(p.data) as number), outcomes.map((_, i) => i + 1), 'with its data')
    t.equal(got[0]!.epoch, before.epoch)
  })

  t.test(`${name}: a room nobody subscribed to still gets a seq and keeps the message`, async t => {
    const { engine } = await setup(t, factory)
    const room = freshRoom()
    const outcome = await engine.publish(request(room, { kept: true }, { from: 'c1' }))
    t.equal(outcome.seq, 1)
    const page = await engine.history.read(room, { limit: 10 })
    t.same(page.position, { seq: 1, epoch: outcome.epoch })
    t.match(page.publications, [{ seq: 1, data: '{"kept":true}', from: 'c1', priority: Priority.normal }])
  })

  t.test(`${name}: history keeps the last HISTORY_SIZE messages and pages with since, limit and reverse`, async t => {
    const { engine } = await setup(t, factory, { historySize: 10 })
    const room = freshRoom()
    for (let i = 1; i <= 25; i++) await engine.publish(request(room, i, { priority: i % 2 === 0 ? Priority.high : Priority.low, ts: 1000 + i }))
    const all = await engine.history.read(room, { limit: 100 })
    t.same(all.publications.map(p => p.seq), [16, 17, 18, 19, 20, 21, 22, 23, 24, 25])
    t.match(all.publications[0], { seq: 16, data: '16', priority: Priority.high, ts: 1016 }, 'with priority and ts')
    t.same((await engine.history.read(room, { since: 20, limit: 3 })).publications.map(p => p.seq), [21, 22, 23])
    t.same((await engine.history.read(room, { limit: 3, reverse: true })).publications.map(p => p.seq), [25, 24, 23])
    t.same((await engine.history.read(room, { since: 22, limit: 10, reverse: true })).publications.map(p => p.seq), [25, 24, 23])
    t.same((await engine.history.read(room, { since: 25, limit: 10 })).publications, [])
  })

  t.test(`${name}: HISTORY_SIZE=0 keeps nothing but still sequences`, async t => {
    const { engine } = await setup(t, factory, { historySize: 0 })
    const room = freshRoom()
    await engine.publish(request(room, 1))
    t.equal((await engine.publish(request(room, 2))).seq, 2)
    t.same((await engine.history.read(room, { limit: 10 })).publications, [])
    const since = await engine.history.position(room)
    t.match(await engine.history.recover(room, since, 100), { recovered: true, publications: [] }, 'nothing missed is a recovery')
    await engine.publish(request(room, 3))
    t.match(await engine.history.recover(room, since, 100), { recovered: false, reason: 'too_old' })
  })

  t.test(`${name}: recovery replays exactly what came after the position, or says why not`, async t => {
    const { engine } = await setup(t, factory, { historySize: 20 })
    const room = freshRoom()
    const start = await engine.history.position(room)
    for (let i = 1; i <= 10; i++) await engine.publish(request(room, i))
    const recovered = await engine.history.recover(room, { seq: 4, epoch: start.epoch }, 100)
    t.match(recovered, { recovered: true, position: { seq: 10, epoch: start.epoch } })
    t.same(recovered.recovered ? recovered.publications.map(p => p.seq) : [], [5, 6, 7, 8, 9, 10])
    t.match(await engine.history.recover(room, { seq: 10, epoch: start.epoch }, 100), { recovered: true, publications: [] }, 'nothing missed')
    t.match(await engine.history.recover(room, { seq: 4, epoch: 'another-life' }, 100), { recovered: false, reason: 'epoch_changed', position: { seq: 10 } })
    t.match(await engine.history.recover(room, { seq: 11, epoch: start.epoch }, 100), { recovered: false, reason: 'epoch_changed' }, 'a position ahead of the stream is not in it')
    t.match(await engine.history.recover(room, { seq: 4, epoch: start.epoch }, 5), { recovered: false, reason: 'too_many' })
    for (let i = 11; i <= 30; i++) await engine.publish(request(room, i))
    t.match(await engine.history.recover(room, { seq: 9, epoch: start.epoch }, 100), { recovered: false, reason: 'too_old' }, 'seq 10 is no longer kept')
    const edge = await engine.history.recover(room, { seq: 10, epoch: start.epoch }, 100)
    t.same(edge.recovered ? edge.publications.map(p => p.seq) : 'not recovered', Array.from({ length: 20 }, (_, i) => i + 11), 'the oldest kept message is enough')
  })

  t.test(`${name}: a stream expires HISTORY_TTL_MS after its last publish, and its epoch changes`, async t => {
    const { engine } = await setup(t, factory, { historyTtlMs: 1000 })
    const room = freshRoom()
    const first = await engine.publish(request(room, 1))
    await sleep(400)
    await engine.publish(request(room, 2))
    await sleep(700)
    t.same(await engine.history.position(room), { seq: 2, epoch: first.epoch }, 'a publish keeps the stream alive')
    await sleep(1200)
    const after = await engine.history.position(room)
    t.not(after.epoch, first.epoch, 'a new life')
    t.equal(after.seq, 0)
    t.match(await engine.history.recover(room, { seq: 2, epoch: first.epoch }, 100), { recovered: false, reason: 'epoch_changed' })
  })

  t.test(`${name}: a repeated publish id is stored and delivered once, and answers the original seq`, async t => {
    const { engine, delivered } = await setup(t, factory)
    const room = freshRoom()
    const other = freshRoom()
    await engine.broker.subscribe(room)
    const first = await engine.publish(request(room, 'once', { id: 'msg-1' }))
    await engine.publish(request(room, 'between'))
    const retry = await engine.publish(request(room, 'once', { id: 'msg-1' }))
    t.same(retry, { seq: first.seq, epoch: first.epoch, duplicate: true })
    t.match(await engine.publish(request(other, 'same id, other room', { id: 'msg-1' })), { seq: 1, duplicate: false }, 'ids are per room')
    const next = await engine.publish(request(room, 'after'))
    t.equal(next.seq, 3, 'the duplicate took no seq')
    const got = await delivered.until(room, 3)
    t.same(got.map(p => p.seq), [1, 2, 3], 'the duplicate was not delivered')
    t.same((await engine.history.read(room, { limit: 10 })).publications.map(p => p.data), ['"once"', '"between"', '"after"'])
    t.ok(engine.history.stats().duplicates >= 1)
  })

  t.test(`${name}: a publish id is forgotten after IDEMPOTENCY_TTL_MS`, async t => {
    const { engine } = await setup(t, factory, { idempotencyTtlMs: 300 })
    const room = freshRoom()
    await engine.publish(request(room, 1, { id: 'k' }))
    t.match(await engine.publish(request(room, 1, { id: 'k' })), { duplicate: true })
    await sleep(500)
    t.match(await engine.publish(request(room, 1, { id: 'k' })), { seq: 2, duplicate: false })
  })

  t.test(`${name}: broadcasts and presence events reach the node`, async t => {
    const { engine, delivered } = await setup(t, factory)
    const room = freshRoom()
    await engine.broker.subscribe(room)
    await engine.broker.watch(room)
    await engine.broker.broadcast({ data: '"all"', priority: Priority.critical, ts: 5 })
    await engine.broker.presence({ room, kind: 'joined', client: 'c1' })
    while (delivered.broadcasts.length === 0 || delivered.presence.length === 0) await sleep(5)
    t.match(delivered.broadcasts, [{ data: '"all"', priority: Priority.critical, ts: 5 }])
    t.match(delivered.presence, [{ room, kind: 'joined', client: 'c1' }])
  })

  t.test(`${name}: a room's presence events reach the node only while it watches the room`, async t => {
    const { engine, delivered } = await setup(t, factory)
    const [quiet, watched] = [freshRoom(), freshRoom()]
    await engine.broker.subscribe(quiet)
    await engine.broker.subscribe(watched)
    await engine.broker.watch(watched)
    // Sent from one node in this order: once the marker arrived, an event of the other room would have too.
    const marker = async (client: string): Promise<void> => {
      await engine.broker.presence({ room: watched, kind: 'joined', client })
      while (!delivered.presence.some(event => event.client === client)) await sleep(5)
    }
    await engine.broker.presence({ room: quiet, kind: 'joined', client: 'member' })
    await marker('m1')
    t.same(delivered.presence.map(event => event.room), [watched], 'a subscribed room that is not watched sends none')
    await engine.broker.watch(quiet)
    await engine.broker.presence({ room: quiet, kind: 'left', client: 'member' })
    while (!delivered.presence.some(event => event.room === quiet)) await sleep(5)
    await engine.broker.unwatch(quiet)
    await engine.broker.presence({ room: quiet, kind: 'joined', client: 'again' })
    await marker('m2')
    t.same(delivered.presence.map(event => `${event.kind} ${event.client}`), ['joined m1', 'left member', 'joined m2'], 'none after unwatch')
  })

  t.test(`${name}: a room's presence events of one turn arrive in order, in one message on a cluster broker`, async t => {
    const { engine, delivered } = await setup(t, factory)
    const room = freshRoom()
    await engine.broker.subscribe(room)
    await engine.broker.watch(room)
    const received = (): number => engine.cluster?.shards.reduce((total, shard) => total + shard.stats.messagesIn, 0) ?? 0
    const before = received()
    const sent = Array.from({ length: 300 }, (_, i) => ({ room, kind: i % 3 === 2 ? 'left' as const : 'joined' as const, client: `c${Math.floor(i / 3)}`, user: i % 2 === 0 ? `u${i}` : undefined }))
    await Promise.all(sent.map(event => engine.broker.presence(event)))
    while (delivered.presence.length < sent.length) await sleep(5)
    t.same(delivered.presence, sent, 'every event, in the order sent')
    if (engine.cluster !== undefined) t.equal(received() - before, 1, 'as one message')
  })

  t.test(`${name}: presence pages through every member exactly once, in join order`, async t => {
    const { engine } = await setup(t, factory)
    const room = freshRoom()
    const total = 10_000
    for (let i = 0; i < total; i++) await engine.presence.join(room, { client: `c${i}`, joinedAt: i, info: i % 1000 === 0 ? { n: i } : undefined })
    await engine.presence.join(room, { client: 'c5', joinedAt: 99 })
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await engine.presence.page(room, 1000, cursor)
      t.equal(page.total, pages < 3 ? total : total - 100)
      seen.push(...page.members.map(m => m.client))
      cursor = page.cursor
      pages++
      if (pages === 3) {
        // Leaves during pagination: members not yet returned must not be returned twice or shift others out.
        for (let i = 5000; i < 5100; i++) await engine.presence.leave(room, `c${i}`)
      }
    } while (cursor !== undefined)
    t.equal(pages, 10)
    t.equal(new Set(seen).size, seen.length, 'no member twice')
    t.equal(seen.length, total - 100, 'every member that stayed')
    t.same(seen.slice(0, 3), ['c0', 'c1', 'c2'], 'in join order')
    t.match((await engine.presence.page(room, 1)).members, [{ client: 'c0', joinedAt: 0, info: { n: 0 } }], 'with what they joined with')
    for (let i = 0; i < total; i++) await engine.presence.leave(room, `c${i}`)
    t.same(await engine.presence.page(room, 10), { total: 0, users: 0, members: [] })
  })

  t.test(`${name}: presence counts distinct users beside connections`, async t => {
    const { engine } = await setup(t, factory)
    const room = freshRoom()
    await engine.presence.join(room, { client: 'a1', user: 'alice', joinedAt: 1 })
    await engine.presence.join(room, { client: 'a2', user: 'alice', joinedAt: 2 })
    await engine.presence.join(room, { client: 'b1', user: 'bob', joinedAt: 3 })
    await engine.presence.join(room, { client: 'anonymous', joinedAt: 4 })
    t.match(await engine.presence.page(room, 10), { total: 4, users: 2 })
    await engine.presence.leave(room, 'a1')
    t.match(await engine.presence.page(room, 10), { total: 3, users: 2 }, 'alice is still there on another connection')
    await engine.presence.leave(room, 'a2')
    await engine.presence.leave(room, 'anonymous')
    t.match(await engine.presence.page(room, 10), { total: 1, users: 1, members: [{ client: 'b1', user: 'bob' }] })
  })

  t.test(`${name}: a cursor stays valid when the room empties and fills again`, async t => {
    const { engine } = await setup(t, factory)
    const room = freshRoom()
    await engine.presence.join(room, { client: 'a', joinedAt: 1 })
    await engine.presence.join(room, { client: 'b', joinedAt: 2 })
    const first = await engine.presence.page(room, 1)
    t.ok(first.cursor !== undefined)
    await engine.presence.leave(room, 'a')
    await engine.presence.leave(room, 'b')
    for (const client of ['c', 'd', 'e']) await engine.presence.join(room, { client, joinedAt: 3 })
    const next = await engine.presence.page(room, 10, first.cursor)
    t.same(next.members.map(m => m.client), ['c', 'd', 'e'], 'members who joined after the cursor are not skipped')
  })
}
