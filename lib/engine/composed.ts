import type { Awaitable, Broker, Engine, HistoryStore, Publication, PresenceStore, PublishOutcome, PublishRequest } from './types.js'

function isPromise<T> (value: Awaitable<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function'
}

/** Runs `next` on the value now if it is one, after it resolves if it is a promise. */
export function then<T, R> (value: Awaitable<T>, next: (value: T) => Awaitable<R>): Awaitable<R> {
  return isPromise(value) ? value.then(next) : next(value)
}

/**
 * An engine made of a history store (which assigns seqs) and a broker (which fans out): append, then
 * hand the stored publication to the broker. A duplicate id stops after the append.
 */
export class ComposedEngine implements Engine {
  constructor (
    readonly history: HistoryStore,
    readonly broker: Broker,
    readonly presence: PresenceStore
  ) {}

  publish (request: PublishRequest): Awaitable<PublishOutcome> {
    return then(this.history.append(request), ({ publication, duplicate }) => {
      const outcome = { seq: publication.seq, epoch: publication.epoch, duplicate }
      if (duplicate) return outcome
      return then(this.broker.publish(publication as Publication), () => outcome)
    })
  }

  async close (): Promise<void> {
    await this.broker.close()
    await this.history.close()
    await this.presence.close()
  }
}
