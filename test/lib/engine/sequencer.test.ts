import t from 'tap'
import { HELD_MAX, Sequencer } from '../../../lib/engine/sequencer.js'
import type { HistoryPage, HistoryQuery, Publication } from '../../../lib/engine/types.js'
import { Priority } from '../../../lib/protocol/priority.js'

function publication (seq: number, epoch = 'e1', room = 'r'): Publication {
  return { room, data: String(seq), priority: Priority.normal, ts: seq, seq, epoch }
}

/** A stream as history has it: seqs `first`…`top` kept, of the given epoch. */
class FakeHistory {
  first = 1
  top = 0
  epoch = 'e1'
  reads: HistoryQuery[] = []
  failing = false
  /** Reads that fail before the next one works. */
  failures = 0
  private pending: (() => void)[] = []
  held = false

  read = async (room: string, query: HistoryQuery): Promise<HistoryPage> => {
    this.reads.push(query)
    if (this.held) await new Promise<void>(resolve => this.pending.push(resolve))
    if (this.failing) throw new Error('down')
    if (this.failures > 0) {
      this.failures--
      throw new Error('timed out')
    }
    const publications: Publication[] = []
    for (let seq = Math.max(this.first, (query.since ?? 0) + 1); seq <= this.top && publications.length < query.limit; seq++) publications.push(publication(seq, this.epoch, room))
    return { position: { seq: this.top, epoch: this.epoch }, publications }
  }

  release (): void {
    this.held = false
    for (const resolve of this.pending.splice(0)) resolve()
  }
}

/** A sequencer tracking room r from seq `from` of epoch e1 (the position read before subscribing). */
function setup (from = 0, holdMs = 0, retryDelaysMs: number[] = []) {
  const history = new FakeHistory()
  const delivered: number[] = []
  const epochs: string[] = []
  const lost: [number, number][] = []
  const sequencer = new Sequencer({
    publication: p => { delivered.push(p.seq) },
    epoch: (_room, epoch) => { epochs.push(epoch) },
    lost: (_room, from, to) => { lost.push([from, to]) }
  }, history.read, holdMs, retryDelaysMs)
  sequencer.track('r', { seq: from, epoch: 'e1' })
  return { history, delivered, epochs, lost, sequencer }
}

const settle = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

t.test('in-order messages pass straight through; duplicates and untracked rooms are dropped', async t => {
  const { sequencer, delivered, history } = setup(4)
  for (const seq of [5, 6, 7, 7, 6]) sequencer.accept(publication(seq))
  sequencer.accept(publication(1, 'e1', 'other'))
  t.same(delivered, [5, 6, 7], 'from the position it started at; repeats are dropped')
  t.equal(sequencer.stats.duplicates, 2)
  t.same(history.reads, [], 'no history read for a stream without holes')
})

t.test('a hole in the live stream is filled from history, and what came meanwhile follows in order', async t => {
  const { sequencer, delivered, history } = setup()
  history.top = 10
  sequencer.accept(publication(1))
  history.held = true
  sequencer.accept(publication(5))
  sequencer.accept(publication(6))
  sequencer.accept(publication(8))
  t.same(delivered, [1], 'held while history is read')
  history.release()
  await settle()
  await settle()
  t.same(delivered, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'every seq once, in order; the history read covered what was held')
  t.same(history.reads[0], { since: 1, limit: 1000 })
  t.equal(sequencer.stats.filled, 9, 'all of 2…10 came from history; the held copies were duplicates')
})

t.test('what history no longer keeps is reported lost, never skipped silently', async t => {
  const { sequencer, delivered, lost, history } = setup()
  sequencer.accept(publication(1))
  history.first = 6
  history.top = 7
  sequencer.accept(publication(8))
  await settle()
  await settle()
  t.same(lost, [[2, 5]])
  t.same(delivered, [1, 6, 7, 8])
  t.equal(sequencer.stats.lost, 4)
})

t.test('a history read that fails is tried again: the hole fills and nothing is reported lost', async t => {
  // The retry waits 1 s, so that the checks of what is held run long before it.
  const { sequencer, delivered, lost, history } = setup(0, 0, [1000])
  history.top = 4
  sequencer.accept(publication(1))
  history.failures = 1
  sequencer.accept(publication(4))
  await settle()
  await settle()
  t.same(delivered, [1], 'held while the read failed')
  t.equal(history.reads.length, 1)
  sequencer.accept(publication(5))
  history.top = 5
  while (delivered.length < 5) await new Promise(resolve => setTimeout(resolve, 5))
  t.same(delivered, [1, 2, 3, 4, 5], 'every seq once, in order, including what arrived during the retry')
  t.same(lost, [])
  t.equal(history.reads.length, 2, 'one failed read, one that worked')
  t.equal(sequencer.stats.retries, 1)
})

t.test('history unreachable through every retry: the skipped seqs are reported and delivery goes on', async t => {
  const { sequencer, delivered, lost, history } = setup(0, 0, [5, 5])
  sequencer.accept(publication(1))
  history.failing = true
  sequencer.accept(publication(4))
  while (lost.length === 0) await new Promise(resolve => setTimeout(resolve, 2))
  t.equal(history.reads.length, 3, 'the first read and both retries')
  t.equal(sequencer.stats.retries, 2)
  t.same(lost, [[2, 3]])
  t.same(delivered, [1, 4])
  sequencer.accept(publication(5))
  t.same(delivered, [1, 4, 5], 'back to live delivery')
})

t.test('a retrying repair holds at most HELD_MAX live messages: past it, the hole is reported at once', async t => {
  const { sequencer, delivered, lost, history } = setup(0, 0, [60_000])
  t.teardown(() => { sequencer.close() })
  sequencer.accept(publication(1))
  history.failing = true
  sequencer.accept(publication(3))
  await settle()
  await settle()
  t.equal(history.reads.length, 1, 'the read failed; the retry waits')
  for (let seq = 4; seq < 3 + HELD_MAX; seq++) sequencer.accept(publication(seq))
  t.same(lost, [[2, 2]], 'reported without waiting for the retry')
  t.equal(delivered.length, 1 + HELD_MAX, 'seq 1 and every held message')
  t.ok(delivered.every((seq, i) => i === 0 || seq === delivered[i - 1]! + (i === 1 ? 2 : 1)), 'in seq order')
  t.equal(delivered.at(-1), 2 + HELD_MAX)
  t.equal(history.reads.length, 1, 'the retry was cancelled')
})

t.test('close cancels a retrying repair and lets a waiting join go on', async t => {
  const { sequencer, history, lost } = setup(2, 0, [60_000])
  history.failing = true
  const waiting = sequencer.until('r', { seq: 6, epoch: 'e1' })
  await settle()
  await settle()
  sequencer.close()
  await waiting
  t.same(lost, [], 'nothing reported: the node is going away')
  t.equal(history.reads.length, 1, 'no read after the close')
  t.same([...sequencer.tracked()], [])
})

t.test('the position check repairs a quiet room only when it is still behind at the next check', async t => {
  const { sequencer, delivered, history } = setup()
  sequencer.accept(publication(1))
  history.top = 3
  sequencer.check('r', { seq: 3, epoch: 'e1' })
  await settle()
  t.same(delivered, [1], 'messages 2 and 3 may still be on their way')
  t.same(history.reads, [])
  sequencer.accept(publication(2))
  sequencer.accept(publication(3))
  sequencer.check('r', { seq: 3, epoch: 'e1' })
  t.same(history.reads, [], 'they arrived: nothing to repair')
  history.top = 5
  sequencer.check('r', { seq: 5, epoch: 'e1' })
  sequencer.accept(publication(4))
  sequencer.check('r', { seq: 5, epoch: 'e1' })
  await settle()
  await settle()
  t.same(delivered, [1, 2, 3, 4, 5], '5 was due at the previous check and never came: filled from history')
  sequencer.accept(publication(5))
  t.same(delivered, [1, 2, 3, 4, 5], 'a late live copy is a duplicate')
})

t.test('after a reconnect the first check repairs at once', async t => {
  const { sequencer, delivered, history } = setup()
  sequencer.accept(publication(1))
  history.top = 4
  sequencer.markUrgent('r')
  sequencer.check('r', { seq: 4, epoch: 'e1' })
  await settle()
  await settle()
  t.same(delivered, [1, 2, 3, 4])
})

t.test('messages published between the position read and the subscription are repaired, not skipped', async t => {
  const { sequencer, delivered, history } = setup(7)
  history.top = 9
  sequencer.check('r', { seq: 9, epoch: 'e1' })
  sequencer.check('r', { seq: 9, epoch: 'e1' })
  await settle()
  await settle()
  t.same(delivered, [8, 9])
  sequencer.accept(publication(10))
  t.same(delivered, [8, 9, 10])
})

t.test('a stream lost and recreated: the node is told the new epoch and reads the new life from its start', async t => {
  const { sequencer, delivered, epochs, history } = setup()
  sequencer.accept(publication(1))
  sequencer.accept(publication(2))
  history.epoch = 'e2'
  history.top = 2
  sequencer.check('r', { seq: 2, epoch: 'e2' })
  await settle()
  await settle()
  t.same(epochs, ['e2'])
  t.same(delivered, [1, 2, 1, 2], 'the new life\'s messages, seq 1 again')
  sequencer.accept(publication(3, 'e2'))
  t.same(delivered, [1, 2, 1, 2, 3])
})

t.test('a live message of a new epoch starts the new life', async t => {
  const { sequencer, delivered, history } = setup(3)
  sequencer.accept(publication(4))
  sequencer.accept(publication(1, 'e2'))
  sequencer.accept(publication(2, 'e2'))
  t.same(delivered, [4, 1, 2])
  t.same(history.reads, [])
})

t.test('an untracked room is forgotten, a repair in flight included', async t => {
  const { sequencer, delivered, history } = setup()
  sequencer.accept(publication(1))
  history.top = 3
  history.held = true
  sequencer.accept(publication(3))
  sequencer.untrack('r')
  history.release()
  await settle()
  await settle()
  t.same(delivered, [1])
})

t.test('until: a join waits for the node to have handed on its replay\'s top, and a behind node repairs at once', async t => {
  const { sequencer, delivered, history } = setup(2)
  t.equal(sequencer.until('r', { seq: 2, epoch: 'e1' }), undefined, 'caught up already')
  t.equal(sequencer.until('r', { seq: 9, epoch: 'other' }), undefined, 'another life is not waited for')
  history.top = 5
  let resolved = false
  const waiting = sequencer.until('r', { seq: 5, epoch: 'e1' })?.then(() => { resolved = true })
  t.ok(waiting !== undefined)
  t.same(history.reads, [{ since: 2, limit: 1000 }], 'no waiting for the next position check')
  await waiting
  t.ok(resolved)
  t.same(delivered, [3, 4, 5], 'resolved after the seqs were handed on')
})

t.test('until resolves when the room is untracked, and reports what history cannot give', async t => {
  const left = setup(2)
  left.history.held = true
  left.history.top = 4
  const waiting = left.sequencer.until('r', { seq: 4, epoch: 'e1' })
  left.sequencer.untrack('r')
  await waiting
  t.pass('untracked: the join does not hang')

  const { sequencer, history, lost } = setup(2)
  history.failing = true
  await sequencer.until('r', { seq: 6, epoch: 'e1' })
  t.same(lost, [[3, 6]], 'history unreachable: reported lost, and the join goes on')
})

t.test('with holdMs, messages that arrive out of order are put in order without reading history', async t => {
  const { sequencer, delivered, history } = setup(0, 50)
  for (const seq of [1, 3, 4, 2, 6, 5]) sequencer.accept(publication(seq))
  t.same(delivered, [1, 2, 3, 4, 5, 6])
  t.same(history.reads, [], 'every hole filled by itself')
})

t.test('with holdMs, a hole that does not fill in time is read from history', async t => {
  const { sequencer, delivered, history } = setup(0, 30)
  history.top = 3
  sequencer.accept(publication(1))
  sequencer.accept(publication(3))
  t.same(delivered, [1], 'held')
  const started = Date.now()
  while (delivered.length < 3) await new Promise(resolve => setTimeout(resolve, 5))
  t.ok(Date.now() - started >= 25, 'after the hold')
  t.same(delivered, [1, 2, 3])
  t.same(history.reads, [{ since: 1, limit: 1000 }])
  sequencer.accept(publication(2))
  t.same(delivered, [1, 2, 3], 'the straggler is a duplicate')
})

t.test('with holdMs, a hole that history no longer has is waited for live: a burst longer than the history pushed it out while it was on its way', async t => {
  // What two nodes publish at once: seq 45 arrives before 3–44, and by the time history is read the
  // stream's top is 300, so a 256-message history starts at 45.
  const { sequencer, delivered, lost, history } = setup(0, 10, [1000])
  t.teardown(() => { sequencer.close() })
  history.first = 45
  history.top = 300
  sequencer.accept(publication(1))
  sequencer.accept(publication(2))
  for (let seq = 45; seq <= 60; seq++) sequencer.accept(publication(seq))
  while (history.reads.length === 0) await new Promise(resolve => setTimeout(resolve, 2))
  await settle()
  t.same(history.reads, [{ since: 2, limit: 1000 }], 'history read after the hold')
  t.same(lost, [], 'not reported: the messages may still come')
  t.same(delivered, [1, 2], 'the rest held')
  t.equal(sequencer.stats.retries, 1, 'a read again is scheduled')
  for (let seq = 44; seq >= 3; seq--) sequencer.accept(publication(seq))
  t.same(delivered, Array.from({ length: 60 }, (_, i) => i + 1), 'the late ones fill the hole as they come; every seq once, in order')
  sequencer.accept(publication(61))
  t.equal(delivered.at(-1), 61, 'the repair is over: live delivery again')
  t.same(lost, [])
  t.equal(history.reads.length, 1, 'no read after the hole filled')
})

t.test('with holdMs, a hole that history no longer has and that never arrives is reported after the retries', async t => {
  const { sequencer, delivered, lost, history } = setup(0, 5, [5, 5])
  history.first = 10
  history.top = 12
  sequencer.accept(publication(1))
  sequencer.accept(publication(12))
  while (lost.length === 0) await new Promise(resolve => setTimeout(resolve, 2))
  t.equal(history.reads.length, 3, 'the first read and both retries')
  t.same(lost, [[2, 9]], 'what history cannot give, once the wait is over')
  t.same(delivered, [1, 10, 11, 12])
  sequencer.accept(publication(13))
  t.equal(delivered.at(-1), 13)
})
