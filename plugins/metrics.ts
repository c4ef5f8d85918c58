import fastifyMetricsModule from 'fastify-metrics'
import fp from 'fastify-plugin'
import promClient from 'prom-client'
import { DROP_REASONS } from '../lib/delivery/outbox.js'
import type { ClusterStats } from '../lib/engine/types.js'
import { PRIORITY_NAMES } from '../lib/protocol/priority.js'
import { ScrapeExporter } from '../lib/metrics/prom-export.js'

// fastify-metrics is CommonJS with `exports.default`; under NodeNext the default import is module.exports.
const fastifyMetrics = fastifyMetricsModule.default

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's own Prometheus registry: two apps in one process must not share prom-client's global one. */
    metricsRegistry: promClient.Registry
  }
}

export interface MetricsPluginOptions {
  /** Route of the Prometheus text endpoint, under the app's prefix. */
  endpoint?: string
}

export default fp<MetricsPluginOptions>(async function metrics (fastify, opts) {
  const registry = new promClient.Registry()
  await fastify.register(fastifyMetrics, {
    endpoint: opts.endpoint ?? '/metrics',
    name: 'fastifyMetrics',
    promClient: { ...promClient, register: registry },
    defaultMetrics: { enabled: true, register: registry },
    routeMetrics: {
      // The histogram stays; the summary, named http_request_summary_seconds, fails promtool.
      enabled: { histogram: true, summary: false },
      registeredRoutesOnly: true,
      overrides: { histogram: { registers: [registry] }, summary: { registers: [registry] } }
    }
  })
  // prom-client names these gauges with a counter's _total suffix, which promtool rejects; the same
  // numbers stay available as nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
  // fastify-metrics creates the route summary even when it is disabled; it is never observed.
  registry.removeSingleMetric('http_request_summary_seconds')
  for (const misnamed of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(misnamed)
  }
  fastify.decorate('metricsRegistry', registry)
  // prom-client's GC observer is process-wide and never removed; it keeps its histogram, and the
  // histogram its registry. Emptying the registry lets a closed app (hub, outboxes, pool) be collected.
  fastify.addHook('onClose', async () => { registry.clear() })

  const { hub, outbox, workerPool } = fastify
  const delivery = outbox.stats
  const tasks = workerPool.stats
  const exporter = new ScrapeExporter(registry)

  exporter.gauge('ws_active_connections', 'Current active WebSocket connections', () => hub.stats().connections)
  exporter.gauge('ws_rooms', 'Rooms with at least one member', () => hub.stats().rooms)
  exporter.gauge('ws_room_memberships', 'Connections in rooms, counted once per room joined', () => hub.stats().memberships)
  exporter.gauge('ws_outboxes', 'Per-connection outboxes not yet released', () => outbox.live.size)
  exporter.counter('ws_messages_received_total', 'Frames received from clients', () => hub.traffic.received)
  exporter.labelledCounter('ws_messages_sent_total', 'Messages written to client sockets', function * () {
    for (let p = 0; p < PRIORITY_NAMES.length; p++) yield [{ priority: PRIORITY_NAMES[p] as string }, delivery.sent[p] as number]
  })
  exporter.labelledCounter('ws_messages_dropped_total', 'Messages not delivered, by priority and reason', function * () {
    for (const reason of DROP_REASONS) {
      for (let p = 0; p < PRIORITY_NAMES.length; p++) {
        yield [{ priority: PRIORITY_NAMES[p] as string, reason }, delivery.dropped[reason][p] as number]
      }
    }
  })
  exporter.gauge('ws_send_queue_length', 'Messages queued in all outboxes', () => outbox.queuedMessages())
  exporter.counter('ws_slow_consumer_disconnects_total', 'Connections closed with 4008 because a critical message could not be queued', () => delivery.slowConsumerDisconnects)
  exporter.labelledCounter('ws_protocol_errors_total', 'Error frames sent to clients, by code', () => Array.from(hub.traffic.protocolErrors, ([code, count]) => [{ code }, count]))
  exporter.histogram('ws_outbox_wait_seconds', 'Time from enqueue to socket write', () => [[{}, delivery.outboxWaitSeconds]])

  const { engine } = fastify
  const streams = hub.streams
  exporter.labelledCounter('ws_recoveries_total', 'Joins with since, by result (recovered, failed) and reason', () => Array.from(streams.recoveries, ([outcome, count]) => [
    outcome === 'recovered' ? { result: 'recovered', reason: 'none' } : { result: 'failed', reason: outcome }, count
  ]))
  exporter.labelledCounter('ws_gaps_sent_total', 'Gap frames sent, by the reason the messages were dropped', () => Array.from(streams.gaps, ([reason, count]) => [{ reason }, count]))
  exporter.counter('ws_publish_duplicates_total', 'Publishes whose id was seen before: not stored or delivered again', () => engine.history.stats().duplicates)
  // Streams kept elsewhere (Redis) are not counted by the node.
  const history = engine.history.stats()
  if (history.streams !== undefined) {
    exporter.gauge('ws_history_streams', 'Room streams the engine keeps', () => engine.history.stats().streams ?? 0)
    exporter.gauge('ws_history_messages', 'Messages kept in history, all rooms', () => engine.history.stats().messages ?? 0)
    exporter.gauge('ws_history_bytes', 'Estimated bytes of history, all rooms (bounded by HISTORY_MAX_BYTES)', () => engine.history.stats().bytes ?? 0)
    exporter.counter('ws_history_evicted_streams_total', 'Streams evicted by the HISTORY_MAX_BYTES bound (their epoch changed)', () => engine.history.stats().evictedStreams ?? 0)
  }
  if (engine.cluster !== undefined) exportCluster(exporter, engine.cluster)
  exporter.gauge('ws_presence_members', 'Members in presence, all rooms', () => engine.presence.stats().members)

  exporter.counter('ws_tasks_submitted_total', 'Tasks submitted to the worker pool', () => tasks.submitted)
  exporter.labelledCounter('ws_tasks_dropped_total', 'Tasks refused or cancelled before running, by reason', () => Array.from(tasks.dropped, ([reason, count]) => [{ reason }, count]))
  exporter.labelledCounter('ws_tasks_completed_total', 'Tasks finished, by status', () => Array.from(tasks.completed, ([status, count]) => [{ status }, count]))
  exporter.counter('ws_tasks_retried_total', 'Task attempts retried after a failure or timeout', () => tasks.retried)
  exporter.counter('ws_tasks_dead_lettered_total', 'Tasks that failed every attempt', () => tasks.deadLettered)
  exporter.gauge('ws_worker_queue_length', 'Tasks waiting for a worker', () => workerPool.queueLength)
  // Publish ids kept elsewhere (Redis, PostgreSQL) are not counted by the node.
  const countsPublishIds = history.idempotencyRecords !== undefined
  exporter.labelledGauge('ws_idempotency_records', 'Task results and publish ids remembered for IDEMPOTENCY_TTL_MS, by kind', function * () {
    yield [{ kind: 'task' }, workerPool.idempotencyRecords]
    if (countsPublishIds) yield [{ kind: 'publish' }, engine.history.stats().idempotencyRecords ?? 0]
  })
  exporter.gauge('ws_worker_utilization', 'Share of worker time spent running tasks (0-1)', () => workerPool.utilization)
  exporter.histogram('ws_task_duration_seconds', 'Task run time, by task name', () => Array.from(tasks.durationSeconds, ([name, histogram]) => [{ name }, histogram]))
  exporter.histogram('ws_task_wait_seconds', 'Time a task waited for a worker', () => [[{}, tasks.waitSeconds]])
}, { name: 'metrics', fastify: '5.x', dependencies: ['engine', 'hub', 'outbox', 'worker-pool'] })

function exportCluster (exporter: ScrapeExporter, cluster: ClusterStats): void {
  const { publishSeconds } = cluster
  if (publishSeconds !== undefined) exporter.histogram('ws_broker_publish_seconds', 'Publish through Redis: from the call to the answer of the script that stored and published it', () => [[{}, publishSeconds]])
  exporter.histogram('ws_broker_lag_seconds', 'From the Redis script storing a message to this node receiving it over pub/sub', () => [[{}, cluster.lagSeconds]])
  exporter.counter('ws_broker_repairs_total', 'Holes in a room\'s live stream, or rooms found behind by the position check, repaired from history', () => cluster.sequencer.repairs)
  exporter.counter('ws_broker_repair_retries_total', 'History reads of a repair that were tried again before anything was reported lost: the read failed, or history no longer had the start of the hole while its messages could still arrive live', () => cluster.sequencer.retries)
  exporter.counter('ws_broker_repaired_messages_total', 'Messages delivered from history because pub/sub did not bring them', () => cluster.sequencer.filled)
  exporter.counter('ws_broker_lost_messages_total', 'Messages pub/sub did not bring and history no longer had; members got gap frames with reason lost', () => cluster.sequencer.lost)
  exporter.labelledCounter('ws_broker_reconnects_total', 'Reconnections of the broker connection, by shard (or server)', () => cluster.shards.map(({ name, stats }) => [{ shard: name }, stats.reconnects]))
  exporter.labelledCounter('ws_broker_commands_total', 'Commands sent to the broker, by shard', () => cluster.shards.map(({ name, stats }) => [{ shard: name }, stats.commands]))
  exporter.labelledCounter('ws_broker_command_failures_total', 'Broker commands that failed (unreachable, timed out, refused), by shard', () => cluster.shards.map(({ name, stats }) => [{ shard: name }, stats.failures]))
  exporter.labelledCounter('ws_broker_messages_received_total', 'Messages received from the broker, by shard', () => cluster.shards.map(({ name, stats }) => [{ shard: name }, stats.messagesIn]))
}
