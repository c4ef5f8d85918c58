import { createHash } from 'node:crypto'
import { relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { loadConfig, type ConfigOverrides } from '../../../lib/config.js'
import { PiscinaWorkerPool, type TaskRunnerOptions } from '../../../lib/tasks/runner.js'
import type { TaskRequest } from '../../../lib/tasks/types.js'

const fixture = (name: string): string => fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url))
// Relative on purpose: TASKS_MODULE is resolved against the working directory.
const TASKS = relative(process.cwd(), fixture('tasks.mjs'))

// Workers would otherwise inherit tap's loaders and take about a second each to start.
const FAST_WORKERS: TaskRunnerOptions = { workerExecArgv: [] }

async function createRunner (t: Test, overrides: ConfigOverrides = {}, options: TaskRunnerOptions = FAST_WORKERS): Promise<PiscinaWorkerPool> {
  const runner = await PiscinaWorkerPool.create(loadConfig({}, { workers: 1, tasksModule: TASKS, ...overrides }), options)
  t.teardown(() => runner.close())
  return runner
}

function task (name: string, data?: unknown, fields: Partial<TaskRequest> = {}): TaskRequest {
  return { name, data, priority: 2, ...fields }
}

async function until (condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(5)
}

t.test('runs the built-in tasks and knows which tasks exist', async t => {
  const runner = await createRunner(t)
  t.same(await runner.submit(task('echo', { a: [1, 2] })), { a: [1, 2] })
  const sha = (text: string): string => createHash('sha256').update(text).digest('hex')
  t.equal(await runner.submit(task('sha256', { a: 1 })), sha('{"a":1}'))
  t.equal(await runner.submit(task('sha256')), sha('null'), 'missing data hashes like null')
  t.ok(runner.has('echo'))
  t.ok(runner.has('slow'), 'user task')
  t.notOk(runner.has('notATask'), 'non-function exports are not tasks')
  t.notOk(runner.has('default'))
  t.same(await runner.submit(task('context')), { attempt: 1, signal: true, aborted: false }, 'handlers get a signal and the attempt')
})

t.test('refuses unknown tasks and bad requests without touching the pool', async t => {
  const runner = await createRunner(t, { maxTaskRetries: 2 })
  await t.rejects(runner.submit(task('nope')), { name: 'TaskError', code: 'unknown_task', message: 'unknown task nope' })
  await t.rejects(runner.submit(task('echo', 1, { retries: 3 })), { code: 'bad_request', message: /from 0 to 2/ })
  await t.rejects(runner.submit(task('echo', 1, { priority: 7 as never })), { code: 'bad_request' })
  await t.rejects(runner.submit(task('echo', 1, { timeoutMs: 0 })), { code: 'bad_request' })
  t.equal(runner.stats.submitted, 0)
  t.equal(runner.stats.waitSeconds.count, 0, 'nothing was dispatched')
})

t.test('a critical task overtakes queued low ones; FIFO within a level', async t => {
  const runner = await createRunner(t)
  const busy = runner.submit(task('slow', { ms: 50 }))
  const lows = Array.from({ length: 50 }, (_, i) => runner.submit(task('record', `low-${i}`, { priority: 3 })))
  const high = runner.submit(task('record', 'high', { priority: 1 }))
  const critical = runner.submit(task('record', 'critical', { priority: 0 }))
  t.equal(runner.queueLength, 52)
  await busy
  t.same(await critical, { label: 'critical', seq: 1 })
  t.same(await high, { label: 'high', seq: 2 })
  const seqs = (await Promise.all(lows)).map(result => (result as { seq: number }).seq)
  t.same(seqs, Array.from({ length: 50 }, (_, i) => i + 3))
})

t.test('answers overloaded at once when the queue is full', async t => {
  const runner = await createRunner(t, { workerQueueSize: 2 })
  const accepted = [runner.submit(task('slow', { ms: 50 })), runner.submit(task('echo', 1)), runner.submit(task('echo', 2))]
  await t.rejects(runner.submit(task('echo', 3)), { code: 'overloaded', message: /queue is full/ })
  t.equal(runner.stats.dropped.get('queue_full'), 1)
  t.same(await Promise.all(accepted), ['slow done', 1, 2])
  t.equal(await runner.submit(task('echo', 4)), 4, 'accepts again once there is room')
})

t.test('caps the tasks of one owner', async t => {
  const runner = await createRunner(t, { maxTasksPerConnection: 2 })
  const a = {}
  const b = {}
  const first = [runner.submit(task('slow', { ms: 50 }, { owner: a })), runner.submit(task('echo', 'a2', { owner: a }))]
  await t.rejects(runner.submit(task('echo', 'a3', { owner: a })), { code: 'overloaded', message: /per connection/ })
  t.equal(await runner.submit(task('echo', 'b1', { owner: b })), 'b1', 'other owners are not affected')
  await Promise.all(first)
  t.equal(await runner.submit(task('echo', 'a4', { owner: a })), 'a4', 'the cap frees up as tasks finish')
  t.equal(runner.stats.dropped.get('connection_limit'), 1)
})

t.test('running tasks with different timeouts are each aborted at their own', async t => {
  const runner = await createRunner(t, { workers: 2, taskTimeoutMs: 5000 })
  const timedOut = (request: TaskRequest): Promise<number> => {
    const started = performance.now()
    return runner.submit(request).then(() => Infinity, () => performance.now() - started)
  }
  // Both workers up first, so that each task below starts when it is submitted. The worker's own
  // signal (a Date.now() deadline, whole milliseconds) may fire a little before the runner's.
  await until(() => runner.utilization >= 0 && (runner as unknown as { pool: { threads: unknown[] } }).pool.threads.length === 2)
  await Promise.all([runner.submit(task('slow', { ms: 20 })), runner.submit(task('slow', { ms: 20 }))])
  // A longer timeout first: the shorter one that starts next must not wait for it.
  const [long, short] = await Promise.all([timedOut(task('waitForAbort', null, { timeoutMs: 600 })), timedOut(task('waitForAbort', null, { timeoutMs: 60 }))])
  t.ok(short >= 55 && short < 450, `the 60 ms task was aborted after ${Math.round(short)} ms`)
  t.ok(long >= 595 && long < 1500, `the 600 ms task was aborted after ${Math.round(long)} ms`)
  // A shorter timeout first: once it is done, the longer one is still aborted.
  const [first, second] = await Promise.all([timedOut(task('waitForAbort', null, { timeoutMs: 60 })), timedOut(task('waitForAbort', null, { timeoutMs: 300 }))])
  t.ok(first >= 55 && first < 250, `the 60 ms task was aborted after ${Math.round(first)} ms`)
  t.ok(second >= 295 && second < 1200, `the 300 ms task was aborted after ${Math.round(second)} ms`)
  t.equal(runner.stats.completed.get('timeout'), 4)
})

t.test('aborts a task at its timeout and keeps serving', async t => {
  const runner = await createRunner(t, { taskTimeoutMs: 300 })
  const started = Date.now()
  await t.rejects(runner.submit(task('loopForever', null, { timeoutMs: 600_000 })), {
    code: 'timeout',
    message: 'task loopForever timed out after 300 ms'
  }, 'a longer timeout is clamped to TASK_TIMEOUT_MS')
  t.ok(Date.now() - started < 2000)
  await t.rejects(runner.submit(task('waitForAbort', null, { timeoutMs: 50 })), { code: 'timeout', message: /after 50 ms/ },
    'the handler sees its signal fire')
  t.equal(await runner.submit(task('echo', 'still here')), 'still here')
  t.equal(runner.stats.completed.get('timeout'), 2)
})

t.test('replaces a crashed worker and keeps serving', async t => {
  const runner = await createRunner(t)
  await t.rejects(runner.submit(task('exitProcess')), { code: 'task_failed', message: /crashed: worker exited with code: 1/ })
  t.equal(await runner.submit(task('echo', 1)), 1)
  await t.rejects(runner.submit(task('throwLater')), { code: 'task_failed', message: /thrown outside the task/ })
  t.equal(await runner.submit(task('echo', 2)), 2)
  await t.rejects(runner.submit(task('fail')), { code: 'task_failed', message: 'task says no' })
  t.equal(runner.stats.completed.get('failed'), 3)
})

t.test('retries with backoff, then dead-letters', async t => {
  const runner = await createRunner(t, { maxTaskRetries: 3, deadLetterSize: 2 }, { ...FAST_WORKERS, retryBaseMs: 1, retryMaxMs: 5 })
  t.same(await runner.submit(task('failTimes', { failures: 1 }, { retries: 1 })), { attempt: 2 }, 'succeeds on the retry')
  t.equal(runner.stats.retried, 1)

  const before = Date.now()
  await t.rejects(runner.submit(task('failTimes', { failures: 5 }, { retries: 2, key: 'k' })), { code: 'task_failed', message: 'attempt 3 failed' })
  t.equal(runner.stats.retried, 3)
  t.equal(runner.stats.deadLettered, 1)
  t.equal(runner.stats.completed.get('failed'), 1, 'one final outcome per task, not per attempt')
  const [letter] = runner.deadLetters()
  t.match(letter, { name: 'failTimes', data: { failures: 5 }, key: 'k', code: 'task_failed', message: 'attempt 3 failed', attempts: 3 })
  t.ok(Date.parse(letter!.firstAttemptAt) >= before - 1)
  t.ok(Date.parse(letter!.failedAt) >= Date.parse(letter!.firstAttemptAt))

  await t.rejects(runner.submit(task('loopForever', null, { retries: 1, timeoutMs: 50 })), { code: 'timeout' }, 'timeouts are retried too')
  t.match(runner.deadLetters().at(-1), { name: 'loopForever', code: 'timeout', attempts: 2 })

  await t.rejects(runner.submit(task('fail', 'third')))
  t.same(runner.deadLetters().map(letter => letter.data), [null, 'third'], 'keeps the last DEAD_LETTER_SIZE, oldest first')
  t.equal(runner.stats.deadLettered, 3)
})

t.test('idempotency keys run a task once', async t => {
  const runner = await createRunner(t, { idempotencyTtlMs: 200 })
  const first = runner.submit(task('nonce', { ms: 50 }, { key: 'k1' }))
  const joined = runner.submit(task('nonce', { ms: 50 }, { key: 'k1' }))
  const value = await first
  t.equal(await joined, value, 'joins the run in flight')
  t.equal(await runner.submit(task('nonce', {}, { key: 'k1' })), value, 'answered from the remembered result')
  t.not(await runner.submit(task('nonce', {}, { key: 'k2' })), value)
  t.equal(runner.stats.durationSeconds.get('nonce')?.count, 2, 'two runs for three k1 submissions and one k2')
  await t.rejects(runner.submit(task('echo', 1, { key: 'k1' })), { code: 'bad_request', message: /already used by a nonce task/ })

  await sleep(250)
  t.not(await runner.submit(task('nonce', {}, { key: 'k1' })), value, 'forgotten after IDEMPOTENCY_TTL_MS')

  await Promise.all([
    t.rejects(runner.submit(task('fail', 1, { key: 'kf' })), { code: 'task_failed' }),
    t.rejects(runner.submit(task('fail', 1, { key: 'kf' })), { code: 'task_failed' }, 'joins the failing run')
  ])
  await t.rejects(runner.submit(task('fail', 1, { key: 'kf' })), { code: 'task_failed' })
  t.equal(runner.stats.completed.get('failed'), 2, 'a failed run is not remembered: the next submission runs again')
})

t.test('cancelOwner cancels queued tasks and lets running ones finish', async t => {
  const runner = await createRunner(t, {}, { ...FAST_WORKERS, retryBaseMs: 60_000 })
  const gone = {}
  const other = {}
  const running = runner.submit(task('slow', { ms: 50 }, { owner: gone }))
  const queued = [1, 2].map(n => t.rejects(runner.submit(task('echo', n, { owner: gone })), { code: 'cancelled' }))
  const shared = runner.submit(task('nonce', {}, { owner: gone, key: 'shared' }))
  const joined = runner.submit(task('nonce', {}, { owner: other, key: 'shared' }))
  const kept = runner.submit(task('echo', 'kept', { owner: other }))
  runner.cancelOwner(gone)
  await Promise.all(queued)
  t.equal(await running, 'slow done')
  t.equal(await shared, await joined, 'a keyed task that others joined keeps running for them')
  t.equal(await kept, 'kept')
  t.equal(runner.stats.dropped.get('disconnected'), 2)

  const retrying = t.rejects(runner.submit(task('fail', null, { owner: gone, retries: 1 })), { code: 'cancelled' },
    'a task waiting to retry counts as queued')
  await until(() => runner.stats.retried === 1)
  runner.cancelOwner(gone)
  await retrying
  runner.cancelOwner({})
})

t.test('drain lets queued tasks finish and refuses new ones', async t => {
  const runner = await createRunner(t)
  const work = [runner.submit(task('slow', { ms: 50 })), runner.submit(task('echo', 'queued'))]
  const drained = runner.drain(5000)
  await t.rejects(runner.submit(task('echo', 'late')), { code: 'shutting_down' })
  await drained
  t.same(await Promise.all(work), ['slow done', 'queued'])
  t.equal(runner.stats.dropped.get('shutting_down'), 1)
  await runner.drain(10)
})

t.test('drain answers what is still queued at the deadline; close stops running tasks', async t => {
  const runner = await createRunner(t, { workers: 2 }, { ...FAST_WORKERS, retryBaseMs: 60_000 })
  const stuck = [t.rejects(runner.submit(task('loopForever')), { code: 'shutting_down' }, 'close answers running tasks')]
  const retrying = t.rejects(runner.submit(task('fail', null, { retries: 1 })), { code: 'shutting_down' })
  await until(() => runner.stats.retried === 1)
  stuck.push(t.rejects(runner.submit(task('loopForever')), { code: 'shutting_down' }))
  const queued = t.rejects(runner.submit(task('echo', 'never')), { code: 'shutting_down' })
  const started = Date.now()
  await runner.drain(100)
  t.ok(Date.now() - started < 1000)
  await Promise.all([queued, retrying])
  const closed = Date.now()
  await runner.close()
  t.ok(Date.now() - closed < 1000, 'close does not wait for running tasks')
  await Promise.all(stuck)
  t.equal(runner.stats.dropped.get('shutting_down'), 4)
  await runner.close()
})

t.test('a user module adds tasks and may replace a built-in', async t => {
  const runner = await createRunner(t, { tasksModule: fixture('override-tasks.mjs') })
  t.same(await runner.submit(task('echo', 1)), { overridden: 1 })
  t.equal(typeof await runner.submit(task('sha256', 1)), 'string')
  t.notOk(runner.has('slow'))
})

t.test('a task module that cannot be used stops the start with a clear error', async t => {
  const create = (tasksModule: string): Promise<PiscinaWorkerPool> => PiscinaWorkerPool.create(loadConfig({}, { workers: 1, tasksModule }), FAST_WORKERS)
  await t.rejects(create(fixture('broken-tasks.mjs')), {
    name: 'ConfigError',
    message: /^TASKS_MODULE .*broken-tasks\.mjs failed to load: broken fixture refuses to load$/
  })
  await t.rejects(create('test/fixtures/missing.mjs'), { name: 'ConfigError', message: /missing\.mjs failed to load/ })
  await t.rejects(create(fixture('no-tasks.mjs')), { name: 'ConfigError', message: /exports no task/ })
})

t.test('stats move', async t => {
  const runner = await createRunner(t, { workers: 2 })
  await Promise.all([runner.submit(task('echo', 1)), runner.submit(task('slow', { ms: 20 })), runner.submit(task('echo', 3))])
  const { stats } = runner
  t.equal(stats.submitted, 3)
  t.equal(stats.completed.get('ok'), 3)
  t.equal(stats.waitSeconds.count, 3)
  t.equal(stats.durationSeconds.get('echo')?.count, 2)
  t.ok((stats.durationSeconds.get('slow')?.sum ?? 0) >= 0.015)
  t.equal(runner.queueLength, 0)
  t.ok(runner.utilization > 0 && runner.utilization <= 1)
})
