interface Batch<I, R> {
  readonly items: I[]
  readonly done: Promise<R>
  resolve (value: R): void
  reject (error: unknown): void
}

/**
 * Requests for the same key made within one event-loop turn, served by one call at its end
 * (setImmediate), whose outcome they all share. A reconnect storm brings thousands of joins to a room in
 * the same turn; each used to cost its own Redis script, and the node spent the storm queueing them.
 * Only requests made before the call are in it, so a result never predates a request it answers.
 */
export class TurnBatch<I, R> {
  /** Not empty exactly while a flush is scheduled. */
  private waiting = new Map<string, Batch<I, R>>()

  constructor (private readonly serve: (key: string, items: I[]) => Promise<R>) {}

  add (key: string, item: I): Promise<R> {
    let batch = this.waiting.get(key)
    if (batch === undefined) {
      let resolve!: (value: R) => void
      let reject!: (error: unknown) => void
      const done = new Promise<R>((resolveDone, rejectDone) => {
        resolve = resolveDone
        reject = rejectDone
      })
      batch = { items: [], done, resolve, reject }
      if (this.waiting.size === 0) setImmediate(this.flush)
      this.waiting.set(key, batch)
    }
    batch.items.push(item)
    return batch.done
  }

  private readonly flush = (): void => {
    const batches = this.waiting
    this.waiting = new Map()
    for (const [key, batch] of batches) {
      let served: Promise<R>
      try {
        served = this.serve(key, batch.items)
      } catch (error) {
        served = Promise.reject(error)
      }
      served.then(batch.resolve, batch.reject)
    }
  }
}
