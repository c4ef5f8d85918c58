// Plain JavaScript on purpose: worker threads do not reliably inherit the tsx loader on Node 20,
// and the build emits it to dist/lib/ beside task-runner.js, which finds it by URL.
import { createHash } from 'node:crypto'
import { isMainThread, workerData } from 'node:worker_threads'

/**
 * @typedef {{ signal: AbortSignal, attempt: number }} TaskContext
 * @typedef {(data: any, context: TaskContext) => unknown} TaskHandler
 * @typedef {{ name: string, data: unknown, attempt: number, deadline: number }} WorkerRequest
 * @typedef {{ ok: true, value: unknown } | { ok: false, timedOut: boolean, message: string }} WorkerReply
 */

/** @type {ReadonlyMap<string, TaskHandler>} */
export const BUILTIN_TASKS = new Map([
  ['echo', async (/** @type {unknown} */ data) => data],
  // A missing payload hashes like null, as it reads on the wire.
  ['sha256', async (/** @type {unknown} */ data) => createHash('sha256').update(JSON.stringify(data ?? null)).digest('hex')]
])

/**
 * Imports a task module and returns its named function exports; the default export is not a task.
 * @param {string} url file URL of the module
 * @returns {Promise<Map<string, TaskHandler>>}
 */
export async function loadTaskModule (url) {
  /** @type {Record<string, unknown>} */
  const namespace = await import(url)
  /** @type {Map<string, TaskHandler>} */
  const handlers = new Map()
  for (const [name, value] of Object.entries(namespace)) {
    if (name !== 'default' && typeof value === 'function') handlers.set(name, /** @type {TaskHandler} */ (value))
  }
  return handlers
}

/**
 * @param {string | undefined} url
 * @returns {Promise<Map<string, TaskHandler>>}
 */
async function loadHandlers (url) {
  if (url === undefined) return new Map(BUILTIN_TASKS)
  return new Map([...BUILTIN_TASKS, ...await loadTaskModule(url)])
}

// Started as the worker boots, so that the first task does not wait for the import. A module that
// fails here fails each task with its error: letting the rejection crash the worker would only make
// piscina respawn it. The main thread imports this file for BUILTIN_TASKS and loadTaskModule alone.
const handlers = isMainThread ? undefined : loadHandlers(workerData?.tasksModule)
handlers?.catch(() => {})

/**
 * @param {unknown} error
 * @returns {string}
 */
function describe (error) {
  if (error instanceof Error) return error.message
  return typeof error === 'string' ? error : String(error)
}

/**
 * The piscina entry point. Failures come back as a reply rather than a thrown error, because a
 * thrown value that cannot be cloned would crash the worker on its way to the main thread.
 * @param {WorkerRequest} request
 * @returns {Promise<WorkerReply>}
 */
export default async function runTask ({ name, data, attempt, deadline }) {
  let handler
  try {
    handler = (await handlers)?.get(name)
  } catch (error) {
    return { ok: false, timedOut: false, message: `TASKS_MODULE failed to load in the worker: ${describe(error)}` }
  }
  if (handler === undefined) return { ok: false, timedOut: false, message: `no task named ${name} in this worker` }
  const context = new DeadlineContext(attempt, deadline)
  try {
    return { ok: true, value: await handler(data, context) }
  } catch (error) {
    return { ok: false, timedOut: context.timedOut, message: describe(error) }
  }
}

/**
 * A handler's TaskContext. Its signal is made when the handler first reads it: an AbortSignal with its
 * timer costs several microseconds, more than a small task itself, and most handlers never look at it.
 */
class DeadlineContext {
  /** @type {AbortSignal | undefined} */
  #signal
  #deadline

  /**
   * @param {number} attempt
   * @param {number} deadline Date.now() value at which the task times out
   */
  constructor (attempt, deadline) {
    this.attempt = attempt
    this.#deadline = deadline
  }

  get signal () {
    this.#signal ??= AbortSignal.timeout(Math.max(0, this.#deadline - Date.now()))
    return this.#signal
  }

  get timedOut () {
    return this.#signal === undefined ? Date.now() >= this.#deadline : this.#signal.aborted
  }
}
