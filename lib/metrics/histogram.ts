/**
 * A histogram kept in plain numbers so that hot paths can observe without a prom-client call;
 * the metrics plugin exports it at scrape time. Counts are per bucket (not cumulative) until exported.
 */
export class PlainHistogram {
  readonly upperBounds: readonly number[]
  readonly bucketCounts: Float64Array
  sum = 0
  count = 0

  constructor (upperBounds: readonly number[]) {
    for (let i = 1; i < upperBounds.length; i++) {
      if (!((upperBounds[i] as number) > (upperBounds[i - 1] as number))) {
        throw new RangeError('histogram bounds must be strictly increasing')
      }
    }
    this.upperBounds = upperBounds
    this.bucketCounts = new Float64Array(upperBounds.length + 1)
  }

  observe (value: number): void {
    const bounds = this.upperBounds
    let i = 0
    while (i < bounds.length && value > (bounds[i] as number)) i++
    this.bucketCounts[i]!++
    this.sum += value
    this.count++
  }

  /** Cumulative counts per upper bound, the last one being +Inf, as Prometheus expects. */
  cumulative (): number[] {
    const out: number[] = []
    let running = 0
    for (const c of this.bucketCounts) {
      running += c
      out.push(running)
    }
    return out
  }
}

/** Seconds; from sub-millisecond writes to a consumer that is seconds behind. */
export const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
