import t from 'tap'
import { TurnBatch } from '../../../lib/engine/turn-batch.js'

t.test('requests for a key within one turn share one call, made after the last of them', async t => {
  const calls: [string, number[]][] = []
  const batch = new TurnBatch<number, string>(async (key, items) => {
    calls.push([key, [...items]])
    return `${key}:${items.length}`
  })
  const first = [batch.add('a', 1), batch.add('b', 2), batch.add('a', 3)]
  t.same(calls, [], 'nothing is served inside the turn')
  t.same(await Promise.all(first), ['a:2', 'b:1', 'a:2'], 'every request of a key gets its call\'s outcome')
  t.same(calls, [['a', [1, 3]], ['b', [2]]])
  t.equal(await batch.add('a', 4), 'a:1', 'a later turn makes its own call')
  t.same(calls[2], ['a', [4]])
})

t.test('a failed call fails every request it served, and the next turn starts afresh', async t => {
  let fail = true
  const batch = new TurnBatch<number, number>(key => {
    if (fail) throw new Error(`${key} is down`)
    return Promise.resolve(1)
  })
  const results = await Promise.allSettled([batch.add('a', 1), batch.add('a', 2)])
  t.same(results.map(result => result.status), ['rejected', 'rejected'])
  t.match((results[0] as PromiseRejectedResult).reason, { message: 'a is down' })
  fail = false
  t.equal(await batch.add('a', 3), 1)
})

t.test('a request made while a call is under way waits for a call of its own', async t => {
  const served: number[][] = []
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const batch = new TurnBatch<number, void>(async (_key, items) => {
    served.push([...items])
    if (served.length === 1) await held
  })
  const first = batch.add('a', 1)
  await new Promise(resolve => setImmediate(resolve))
  t.same(served, [[1]], 'the first call is under way')
  const second = batch.add('a', 2)
  await new Promise(resolve => setImmediate(resolve))
  t.same(served, [[1], [2]], 'the second request did not join the call already sent')
  release()
  await Promise.all([first, second])
})
