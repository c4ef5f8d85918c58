import type { Registry } from 'prom-client'
import type { PlainHistogram } from './histogram.js'

type Labels = Record<string, string | number>

interface Sample {
  metricName?: string
  labels: Labels
  value: number
}

type MetricType = 'counter' | 'gauge' | 'histogram'

/**
 * A metric whose samples are read from plain numbers when Prometheus scrapes, so the code that counts
 * never calls prom-client. It implements the part of prom-client's metric contract a Registry uses.
 */
class ScrapedMetric {
  readonly aggregator = 'sum'

  constructor (
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    private readonly read: () => Sample[]
  ) {}

  async get (): Promise<{ name: string, help: string, type: MetricType, aggregator: string, values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.read() }
  }

  /** Registry.resetMetrics() calls this; the numbers belong to their owners, so there is nothing to reset. */
  reset (): void {}
}

export function histogramSamples (name: string, histogram: PlainHistogram, labels: Labels = {}): Sample[] {
  const cumulative = histogram.cumulative()
  const samples: Sample[] = histogram.upperBounds.map((bound, i) => ({
    metricName: `${name}_bucket`,
    labels: { ...labels, le: bound },
    value: cumulative[i] as number
  }))
  samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative[cumulative.length - 1] as number })
  samples.push({ metricName: `${name}_sum`, labels, value: histogram.sum })
  samples.push({ metricName: `${name}_count`, labels, value: histogram.count })
  return samples
}

/** Registers scrape-time metrics on one registry. */
export class ScrapeExporter {
  constructor (private readonly registry: Registry) {}

  private add (name: string, help: string, type: MetricType, read: () => Sample[]): void {
    this.registry.registerMetric(new ScrapedMetric(name, help, type, read) as never)
  }

  gauge (name: string, help: string, read: () => number): void {
    this.add(name, help, 'gauge', () => [{ labels: {}, value: read() }])
  }

  counter (name: string, help: string, read: () => number): void {
    this.add(name, help, 'counter', () => [{ labels: {}, value: read() }])
  }

  labelledGauge (name: string, help: string, read: () => Iterable<[Labels, number]>): void {
    this.addLabelled(name, help, 'gauge', read)
  }

  labelledCounter (name: string, help: string, read: () => Iterable<[Labels, number]>): void {
    this.addLabelled(name, help, 'counter', read)
  }

  private addLabelled (name: string, help: string, type: 'gauge' | 'counter', read: () => Iterable<[Labels, number]>): void {
    this.add(name, help, type, () => Array.from(read(), ([labels, value]) => ({ labels, value })))
  }

  histogram (name: string, help: string, read: () => Iterable<[Labels, PlainHistogram]>): void {
    this.add(name, help, 'histogram', () => Array.from(read(), ([labels, histogram]) => histogramSamples(name, histogram, labels)).flat())
  }
}
