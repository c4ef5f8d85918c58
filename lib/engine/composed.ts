import { EngineUnavailableError } from './errors.js'
import type { Awaitable, Broker, ClusterStats, Engine, HistoryStore, NodeRegistry, Publication, PresenceStore, PublishOutcome, PublishRequest } from './types.js'

export function isPromise<T> (value: Awaitable<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function'
}

/** Runs `next` on the value now if it is one, after it resolves if it is a promise. */
export function then<T, R> (value: Awaitable<T>, next: (value: T) => Awaitable<R>): Awaitable<R> {
  return isPromise(value) ? value.then(next) : next(value)
}

/** `second` once both have settled, or the first failure: two steps run at once. */
export function afterBoth<T> (first: Awaitable<unknown>, second: Awaitable<T>): Awaitable<T> {
  if (!isPromise(first) && !isPromise(second)) return second
  return Promise.all([first, second]).then(([, value]) => value)
}

/**
 * An engine made of a history store (which assigns seqs) and a broker (which fans out): append, then
 * hand the stored publication to the broker. A duplicate id stops after the append.
 */
export class ComposedEngine implements Engine {
  constructor (
    readonly history: HistoryStore,
    readonly broker: Broker,
    readonly presence: PresenceStore,
    readonly nodes: NodeRegistry,
    /** Whether the services behind the parts are reachable. */
    readonly ready: () => boolean = () => true,
    readonly cluster?: ClusterStats
  ) {}

  /** Refused up front while a part is down, so that `unavailable` means nothing was stored. */
  publish (request: PublishRequest): Awaitable<PublishOutcome> {
    if (!this.ready()) throw new EngineUnavailableError('the engine is unavailable')
    const appended = this.history.append(request)
    return isPromise(appended) ? appended.then(this.fanOut) : this.fanOut(appended)
  }

  /** Bound once: a publish on the memory engine runs without a closure or a promise. */
  private readonly fanOut = ({ publication, duplicate }: { publication: Publication, duplicate: boolean }): Awaitable<PublishOutcome> => {
    const outcome = { seq: publication.seq, epoch: publication.epoch, duplicate }
    if (duplicate) return outcome
    const sent = this.broker.publish(publication)
    return isPromise(sent) ? sent.then(() => outcome) : outcome
  }

  async close (): Promise<void> {
    await this.nodes.close()
    await this.broker.close()
    await this.history.close()
    await this.presence.close()
  }
}
