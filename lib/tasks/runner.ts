import { resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { Piscina } from 'piscina'
import { ConfigError, type Config } from '../config.js'
import { Fifo } from '../fifo.js'
import { LATENCY_BUCKETS_SECONDS, PlainHistogram } from '../metrics/histogram.js'
import { PRIORITY_LEVELS, parsePriority, type Priority } from '../protocol/priority.js'
import { TaskError, type DeadLetter, type TaskErrorCode, type WorkerPool, type TaskRequest, type TaskStats } from './types.js'
import { BUILTIN_TASKS, loadTaskModule, type WorkerReply, type WorkerRequest } from './worker.js'

const WORKER_URL = new URL('./worker.js', import.meta.url)

export interface TaskRunnerOptions {
  /** Delay before the first retry; each further retry doubles it, with jitter. */
  retryBaseMs?: number
  retryMaxMs?: number
  /** Successful keyed results remembered at most; the oldest go first. */
  idempotencyCapacity?: number
  /**
   * Node flags for the worker threads; by default they inherit the process's, loaders included,
   * which can make each worker start (and restart after a crash or timeout) several times slower.
   */
  workerExecArgv?: string[]
  /** Pool errors that no task is waiting for, such as a worker dying between tasks. */
  onError?: (error: Error) => void
}


type Outcome = { ok: true, value: unknown } | { ok: false, error: TaskError }

interface Job {
  readonly name: string
  readonly data: unknown
  readonly priority: Priority
  readonly timeoutMs: number
  readonly key: string | undefined
  owner: object | undefined
  maxAttempts: number
  attempt: number
  /** On a worker now, as opposed to queued or waiting to retry. */
  running: boolean
  /** Submissions with the same key that are waiting on this run. */
  joined: number
  enqueuedAt: number
  firstAttemptAt: number
  retryTimer: NodeJS.Timeout | undefined
  /** The running attempt's: performance.now() at which it is aborted, and its signal. */
  deadlineAt: number
  abort: TaskAbort | undefined
  readonly promise: Promise<unknown>
  readonly resolve: (value: unknown) => void
  readonly reject: (error: TaskError) => void
}

/**
 * The abort signal piscina gets for a running task, so that a task past its timeout stops its worker.
 * piscina needs only `aborted`, `reason` and one 'abort' listener. An AbortController cost about 6 µs
 * per task here (EventTarget set-up, a new hidden class per signal), against about 0.15 ms for a whole
 * WebSocket task round trip.
 */
class TaskAbort {
  aborted = false
  reason: unknown = undefined
  private listener: (() => void) | undefined

  addEventListener (_type: 'abort', listener: () => void): void {
    this.listener = listener
  }

  removeEventListener (_type: 'abort', listener: () => void): void {
    if (this.listener === listener) this.listener = undefined
  }

  abort (reason: string): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    const listener = this.listener
    this.listener = undefined
    listener?.()
  }
}

interface CachedResult {
  name: string
  value: unknown
  expiresAt: number
}

/** FIFO per priority level. */
class PriorityQueue {
  private readonly levels: Fifo<Job>[] = Array.from({ length: PRIORITY_LEVELS }, () => new Fifo<Job>())
  size = 0

  push (job: Job): void {
    this.levels[job.priority]!.push(job)
    this.size++
  }

  shift (): Job | undefined {
    for (const level of this.levels) {
      const job = level.shift()
      if (job === undefined) continue
      this.size--
      return job
    }
    return undefined
  }

  removeWhere (predicate: (job: Job) => boolean): Job[] {
    const removed: Job[] = []
    for (const level of this.levels) {
      for (const job of level.drain()) {
        if (predicate(job)) removed.push(job)
        else level.push(job)
      }
    }
    this.size -= removed.length
    return removed
  }
}

function resolveTasksModule (path: string): string {
  return pathToFileURL(resolve(process.cwd(), path)).href
}

function newCounters (names: readonly string[]): Map<string, number> {
  return new Map(names.map(name => [name, 0]))
}

function increment (counters: Map<string, number>, key: string): void {
  counters.set(key, (counters.get(key) ?? 0) + 1)
}

/**
 * The piscina-backed WorkerPool. Tasks wait in this class's own priority queue and are handed to
 * piscina only when a worker is ready and idle, for two reasons: piscina parks abortable tasks that
 * find no free worker in an internal FIFO that bypasses a custom taskQueue, so its queue could not
 * keep the priority order; and a task's timeout then starts when it starts, not while a crashed
 * worker is being replaced.
 */
export class PiscinaWorkerPool implements WorkerPool {
  /** Validates TASKS_MODULE in this thread first, so that a broken module stops the boot with its error. */
  static async create (config: Config, options: TaskRunnerOptions = {}): Promise<PiscinaWorkerPool> {
    const names = new Set(BUILTIN_TASKS.keys())
    let moduleUrl: string | undefined
    if (config.tasksModule !== '') {
      moduleUrl = resolveTasksModule(config.tasksModule)
      let handlers: Map<string, unknown>
      try {
        handlers = await loadTaskModule(moduleUrl)
      } catch (error) {
        throw new ConfigError(`TASKS_MODULE ${config.tasksModule} failed to load: ${(error as Error).message}`, { cause: error })
      }
      if (handlers.size === 0) {
        throw new ConfigError(`TASKS_MODULE ${config.tasksModule} exports no task: tasks are named exports that are functions`)
      }
      for (const name of handlers.keys()) names.add(name)
    }
    return new PiscinaWorkerPool(config, names, moduleUrl, options)
  }

  readonly stats: TaskStats = {
    submitted: 0,
    dropped: newCounters(['queue_full', 'connection_limit', 'disconnected', 'shutting_down']),
    completed: newCounters(['ok', 'failed', 'timeout']),
    retried: 0,
    deadLettered: 0,
    durationSeconds: new Map(),
    waitSeconds: new PlainHistogram(LATENCY_BUCKETS_SECONDS)
  }

  private readonly pool: Piscina<WorkerRequest, WorkerReply>
  private readonly names: ReadonlySet<string>
  private readonly config: Config
  private readonly retryBaseMs: number
  private readonly retryMaxMs: number
  private readonly idempotencyCapacity: number
  private readonly queue = new PriorityQueue()
  private readonly backingOff = new Set<Job>()
  private readonly ownerJobs = new WeakMap<object, Set<Job>>()
  private readonly inFlightKeys = new Map<string, Job>()
  /** Insertion order is expiry order (one TTL for all), so sweeping stops at the first live entry. */
  private readonly results = new Map<string, CachedResult>()
  private readonly resultSweeper: NodeJS.Timeout | undefined
  private readonly deadLetterRing: DeadLetter[] = []
  private deadLetterNext = 0
  private readonly idleWaiters = new Set<() => void>()
  private running = 0
  /**
   * Running attempts, whose deadlines one timer checks: it is armed for the earliest and left armed when
   * that attempt finishes first, so a task costs no timer of its own (about 1 % of a round trip).
   */
  private readonly runningJobs = new Set<Job>()
  private deadlineTimer: NodeJS.Timeout | undefined
  private deadlineTimerAt = Infinity
  private draining = false
  private closed = false
  private closing: Promise<void> | undefined

  private constructor (config: Config, names: ReadonlySet<string>, moduleUrl: string | undefined, options: TaskRunnerOptions) {
    this.config = config
    this.names = names
    this.retryBaseMs = options.retryBaseMs ?? 50
    this.retryMaxMs = options.retryMaxMs ?? 2000
    this.idempotencyCapacity = options.idempotencyCapacity ?? 100_000
    this.pool = new Piscina({
      filename: WORKER_URL.href,
      minThreads: config.workers,
      maxThreads: config.workers,
      // Blocking in Atomics.wait between tasks would freeze timers and I/O that a handler leaves behind.
      atomics: 'disabled',
      workerData: { tasksModule: moduleUrl },
      execArgv: options.workerExecArgv
    })
    const onError = options.onError ?? ((error: Error) => process.emitWarning(error))
    this.pool.on('error', onError)
    // piscina announces a replacement worker before it counts it as ready.
    this.pool.on('workerCreate', () => queueMicrotask(() => this.pump()))
    // Without it, expired results would wait for the next keyed task to be released.
    if (config.idempotencyTtlMs > 0) {
      this.resultSweeper = setInterval(() => { this.sweepResults(Date.now()) }, Math.min(config.idempotencyTtlMs, 10_000))
      this.resultSweeper.unref()
    }
  }

  get queueLength (): number {
    return this.queue.size
  }

  get idempotencyRecords (): number {
    return this.results.size
  }

  get utilization (): number {
    return this.pool.utilization
  }

  has (name: string): boolean {
    return this.names.has(name)
  }

  submit (request: TaskRequest): Promise<unknown> {
    const { name, key, owner } = request
    if (!this.names.has(name)) return Promise.reject(new TaskError('unknown_task', `unknown task ${name}`))
    const priority = parsePriority(request.priority)
    if (priority === undefined) return Promise.reject(new TaskError('bad_request', 'priority must be 0–3'))
    const retries = request.retries ?? 0
    if (!Number.isInteger(retries) || retries < 0 || retries > this.config.maxTaskRetries) {
      return Promise.reject(new TaskError('bad_request', `retries must be an integer from 0 to ${this.config.maxTaskRetries}`))
    }
    const timeoutMs = request.timeoutMs ?? this.config.taskTimeoutMs
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
      return Promise.reject(new TaskError('bad_request', 'timeoutMs must be a positive integer'))
    }
    this.stats.submitted++
    if (this.draining) return this.drop('shutting_down', new TaskError('shutting_down', 'the server is shutting down'))

    if (key !== undefined) {
      this.sweepResults(Date.now())
      const earlier = this.results.get(key) ?? this.inFlightKeys.get(key)
      if (earlier !== undefined) {
        if (earlier.name !== name) {
          return Promise.reject(new TaskError('bad_request', `key ${key} is already used by a ${earlier.name} task`))
        }
        if ('expiresAt' in earlier) return Promise.resolve(earlier.value)
        earlier.joined++
        return earlier.promise
      }
    }

    const owned = owner === undefined ? undefined : this.ownerJobs.get(owner)
    if (owned !== undefined && owned.size >= this.config.maxTasksPerConnection) {
      return this.drop('connection_limit', new TaskError('overloaded', `at most ${this.config.maxTasksPerConnection} tasks per connection may be queued or running`))
    }
    // Jobs waiting to retry count as queued, so that the bound holds once they come back.
    if (this.queue.size + this.backingOff.size >= this.config.workerQueueSize) {
      return this.drop('queue_full', new TaskError('overloaded', 'the task queue is full'))
    }

    let resolveJob!: (value: unknown) => void
    let rejectJob!: (error: TaskError) => void
    const promise = new Promise<unknown>((resolve, reject) => {
      resolveJob = resolve
      rejectJob = reject
    })
    const job: Job = {
      name,
      data: request.data,
      priority,
      timeoutMs: Math.min(timeoutMs, this.config.taskTimeoutMs),
      key,
      owner,
      maxAttempts: retries + 1,
      attempt: 1,
      running: false,
      joined: 0,
      enqueuedAt: performance.now(),
      firstAttemptAt: 0,
      retryTimer: undefined,
      deadlineAt: 0,
      abort: undefined,
      promise,
      resolve: resolveJob,
      reject: rejectJob
    }
    if (owner !== undefined) {
      if (owned === undefined) this.ownerJobs.set(owner, new Set([job]))
      else owned.add(job)
    }
    if (key !== undefined) this.inFlightKeys.set(key, job)
    this.queue.push(job)
    this.pump()
    return promise
  }

  cancelOwner (owner: object): void {
    const owned = this.ownerJobs.get(owner)
    if (owned === undefined) return
    this.ownerJobs.delete(owner)
    const cancelled = new Set<Job>()
    for (const job of owned) {
      job.owner = undefined
      // Others joined it by key: it keeps going for them.
      if (job.joined > 0) continue
      if (job.running) {
        // Nobody is left to receive a later attempt.
        job.maxAttempts = job.attempt
      } else {
        cancelled.add(job)
      }
    }
    if (cancelled.size === 0) return
    this.queue.removeWhere(job => cancelled.has(job))
    for (const job of cancelled) {
      this.cancelRetry(job)
      increment(this.stats.dropped, 'disconnected')
      this.settle(job, { ok: false, error: new TaskError('cancelled', 'the connection closed before the task ran') })
    }
  }

  drain (timeoutMs: number): Promise<void> {
    this.draining = true
    if (this.outstanding === 0) return Promise.resolve()
    return new Promise(resolve => {
      const done = (): void => {
        clearTimeout(deadline)
        this.idleWaiters.delete(done)
        resolve()
      }
      const deadline = setTimeout(() => {
        this.abandonWaiting()
        done()
      }, timeoutMs)
      this.idleWaiters.add(done)
    })
  }

  close (): Promise<void> {
    this.closing ??= this.shutDown()
    return this.closing
  }

  /** The most recent tasks that failed for good, oldest first. */
  deadLetters (): DeadLetter[] {
    const ring = this.deadLetterRing
    return [...ring.slice(this.deadLetterNext), ...ring.slice(0, this.deadLetterNext)]
  }

  private async shutDown (): Promise<void> {
    this.draining = true
    this.closed = true
    clearInterval(this.resultSweeper)
    clearTimeout(this.deadlineTimer)
    this.results.clear()
    this.abandonWaiting()
    // destroy rather than close: close waits up to closeTimeout for running tasks, and drain already gave them their time.
    await this.pool.destroy()
  }

  private get outstanding (): number {
    return this.queue.size + this.running + this.backingOff.size
  }

  private drop (reason: string, error: TaskError): Promise<never> {
    increment(this.stats.dropped, reason)
    return Promise.reject(error)
  }

  /** Answers every task that has not started (or is waiting to retry) with shutting_down. */
  private abandonWaiting (): void {
    const waiting = [...this.queue.removeWhere(() => true), ...this.backingOff]
    for (const job of waiting) {
      this.cancelRetry(job)
      increment(this.stats.dropped, 'shutting_down')
      this.settle(job, { ok: false, error: new TaskError('shutting_down', 'the server shut down before the task ran') })
    }
  }

  private cancelRetry (job: Job): void {
    if (job.retryTimer === undefined) return
    clearTimeout(job.retryTimer)
    job.retryTimer = undefined
    this.backingOff.delete(job)
  }

  private pump (): void {
    while (this.queue.size > 0 && this.pool.idleThreads > 0 && !this.closed) {
      this.start(this.queue.shift()!)
    }
  }

  private start (job: Job): void {
    job.running = true
    this.running++
    const startedAt = performance.now()
    this.stats.waitSeconds.observe((startedAt - job.enqueuedAt) / 1000)
    if (job.attempt === 1) job.firstAttemptAt = Date.now()
    const abort = new TaskAbort()
    job.abort = abort
    job.deadlineAt = startedAt + job.timeoutMs
    this.runningJobs.add(job)
    if (job.deadlineAt < this.deadlineTimerAt) this.armDeadlineTimer(job.deadlineAt, startedAt)
    const request: WorkerRequest = { name: job.name, data: job.data, attempt: job.attempt, deadline: Date.now() + job.timeoutMs }
    // Both handlers finish the attempt themselves: one promise step between the worker's reply and the
    // job's settlement, since every step is latency on a task's round trip. They stay anonymous: tsx
    // (keepNames) gives a named closure its name with a defineProperty call each time it is created.
    this.pool.run(request, { signal: abort }).then(
      reply => {
        this.finish(job, startedAt, reply.ok
          ? reply
          : { ok: false, error: new TaskError(reply.timedOut ? 'timeout' : 'task_failed', reply.timedOut ? this.timeoutMessage(job) : reply.message) })
      },
      (error: Error) => {
        this.finish(job, startedAt, { ok: false, error: this.closed
          ? new TaskError('shutting_down', 'the server shut down while the task ran')
          : abort.aborted
            ? new TaskError('timeout', this.timeoutMessage(job))
            : new TaskError('task_failed', `the worker running ${job.name} crashed: ${error.message}`) })
      }
    )
  }

  private finish (job: Job, startedAt: number, outcome: Outcome): void {
    this.runningJobs.delete(job)
    job.abort = undefined
    this.running--
    job.running = false
    this.observeDuration(job.name, (performance.now() - startedAt) / 1000)
    this.finishAttempt(job, outcome)
    this.pump()
  }

  /** Unref'd: a running task keeps the process alive through piscina's worker, not through this timer. */
  private armDeadlineTimer (at: number, now: number): void {
    clearTimeout(this.deadlineTimer)
    this.deadlineTimerAt = at
    this.deadlineTimer = setTimeout(this.checkDeadlines, Math.max(0, Math.ceil(at - now)))
    this.deadlineTimer.unref()
  }

  /** Aborts the attempts past their deadline and arms the timer for the next one. */
  private readonly checkDeadlines = (): void => {
    this.deadlineTimer = undefined
    this.deadlineTimerAt = Infinity
    const now = performance.now()
    let next = Infinity
    for (const job of this.runningJobs) {
      if (job.deadlineAt <= now) job.abort?.abort(this.timeoutMessage(job))
      else if (job.deadlineAt < next) next = job.deadlineAt
    }
    if (next !== Infinity) this.armDeadlineTimer(next, now)
  }

  private timeoutMessage (job: Job): string {
    return `task ${job.name} timed out after ${job.timeoutMs} ms`
  }

  private observeDuration (name: string, seconds: number): void {
    let histogram = this.stats.durationSeconds.get(name)
    if (histogram === undefined) {
      histogram = new PlainHistogram(LATENCY_BUCKETS_SECONDS)
      this.stats.durationSeconds.set(name, histogram)
    }
    histogram.observe(seconds)
  }

  private finishAttempt (job: Job, outcome: Outcome): void {
    if (outcome.ok) {
      increment(this.stats.completed, 'ok')
      this.remember(job, outcome.value)
      this.settle(job, outcome)
      return
    }
    const { code } = outcome.error
    if (code === 'shutting_down') {
      increment(this.stats.dropped, 'shutting_down')
      this.settle(job, outcome)
      return
    }
    if (job.attempt < job.maxAttempts && !this.closed) {
      this.scheduleRetry(job)
      return
    }
    increment(this.stats.completed, code === 'timeout' ? 'timeout' : 'failed')
    this.deadLetter(job, outcome.error)
    this.settle(job, outcome)
  }

  private scheduleRetry (job: Job): void {
    this.stats.retried++
    const ceiling = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (job.attempt - 1))
    // Jitter keeps tasks that failed together from retrying in lockstep.
    const delay = ceiling * (0.5 + Math.random() / 2)
    job.attempt++
    this.backingOff.add(job)
    job.retryTimer = setTimeout(() => {
      job.retryTimer = undefined
      this.backingOff.delete(job)
      job.enqueuedAt = performance.now()
      this.queue.push(job)
      this.pump()
    }, delay)
  }

  private deadLetter (job: Job, error: TaskError): void {
    this.stats.deadLettered++
    const size = this.config.deadLetterSize
    if (size === 0) return
    const entry: DeadLetter = {
      name: job.name,
      data: job.data,
      key: job.key,
      code: error.code,
      message: error.message,
      attempts: job.attempt,
      firstAttemptAt: new Date(job.firstAttemptAt).toISOString(),
      failedAt: new Date().toISOString()
    }
    if (this.deadLetterRing.length < size) {
      this.deadLetterRing.push(entry)
    } else {
      this.deadLetterRing[this.deadLetterNext] = entry
      this.deadLetterNext = (this.deadLetterNext + 1) % size
    }
  }

  private remember (job: Job, value: unknown): void {
    if (job.key === undefined || this.config.idempotencyTtlMs === 0) return
    const now = Date.now()
    this.sweepResults(now)
    if (this.results.size >= this.idempotencyCapacity) {
      this.results.delete(this.results.keys().next().value!)
    }
    this.results.set(job.key, { name: job.name, value, expiresAt: now + this.config.idempotencyTtlMs })
  }

  private sweepResults (now: number): void {
    for (const [key, entry] of this.results) {
      if (entry.expiresAt > now) return
      this.results.delete(key)
    }
  }

  /** Failed runs are not remembered: a later submission with the same key runs the task again. */
  private settle (job: Job, outcome: Outcome): void {
    // An owner's emptied set stays for its next task (cancelOwner drops it at disconnect).
    if (job.owner !== undefined) this.ownerJobs.get(job.owner)?.delete(job)
    if (job.key !== undefined && this.inFlightKeys.get(job.key) === job) this.inFlightKeys.delete(job.key)
    if (outcome.ok) job.resolve(outcome.value)
    else job.reject(outcome.error)
    this.notifyIfIdle()
  }

  private notifyIfIdle (): void {
    if (this.outstanding !== 0) return
    for (const waiter of this.idleWaiters) waiter()
  }
}
