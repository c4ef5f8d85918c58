import type { ErrorCode } from '../protocol/errors.js'
import type { PlainHistogram } from '../metrics/histogram.js'
import type { Priority } from '../protocol/priority.js'

/** Error codes a task submission can end with: the catalogue's, plus `cancelled`, which nobody is left to receive. */
export type TaskErrorCode = Extract<ErrorCode, 'overloaded' | 'timeout' | 'task_failed' | 'unknown_task' | 'shutting_down' | 'bad_request'> | 'cancelled'

export class TaskError extends Error {
  override name = 'TaskError'
  constructor (readonly code: TaskErrorCode, message: string) {
    super(message)
  }
}

export interface TaskRequest {
  name: string
  data: unknown
  priority: Priority
  /** Retries after a failure or timeout (n retries = up to n + 1 attempts). */
  retries?: number | undefined
  /** Shorter timeout than TASK_TIMEOUT_MS for this task. */
  timeoutMs?: number | undefined
  /** Idempotency key, global across connections and the HTTP API. */
  key?: string | undefined
  /**
   * Who submitted it (a connection): caps tasks per owner and cancels the owner's queued tasks when it
   * goes away. Absent for the HTTP API.
   */
  owner?: object | undefined
}

/** Task counters in plain numbers; the metrics plugin exports them at scrape time. */
export interface TaskStats {
  submitted: number
  /** reason → count: queue_full, connection_limit, disconnected, shutting_down */
  readonly dropped: Map<string, number>
  /** status → count: ok, failed, timeout */
  readonly completed: Map<string, number>
  retried: number
  deadLettered: number
  /** task name → run duration in seconds */
  readonly durationSeconds: Map<string, PlainHistogram>
  /** submit to start of the run, seconds */
  readonly waitSeconds: PlainHistogram
}

/** A task that failed every attempt, kept in the bounded dead-letter list. */
export interface DeadLetter {
  name: string
  data: unknown
  key: string | undefined
  code: TaskErrorCode
  message: string
  attempts: number
  /** ISO timestamps */
  firstAttemptAt: string
  failedAt: string
}

/** What the worker-pool plugin decorates as `fastify.workerPool`. */
export interface WorkerPool {
  readonly stats: TaskStats
  /** Tasks waiting for a worker now. */
  readonly queueLength: number
  /** Share of worker time spent running tasks, 0–1. */
  readonly utilization: number
  /** Results remembered by key for IDEMPOTENCY_TTL_MS. */
  readonly idempotencyRecords: number
  /** Whether a task of that name exists (built-ins plus the user's module). */
  has (name: string): boolean
  /** Resolves with the handler's result; rejects with a TaskError. */
  submit (request: TaskRequest): Promise<unknown>
  /** Cancels the owner's queued tasks (rejected with `cancelled`, counted as dropped `disconnected`); running ones finish. */
  cancelOwner (owner: object): void
  /** Refuses new tasks; waits until queued and running ones settle or the deadline passes. */
  drain (timeoutMs: number): Promise<void>
  /** The last DEAD_LETTER_SIZE tasks that failed every attempt, oldest first. */
  deadLetters (): DeadLetter[]
  /** Releases the threads. */
  close (): Promise<void>
}
