import { availableParallelism } from 'node:os'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'

const KiB = 1024
const MiB = 1024 * KiB

function integer (min: number, max: number, defaultValue: number) {
  return Type.Integer({ minimum: min, maximum: max, default: defaultValue })
}

/**
 * Every setting once: its environment variable, its schema with the default, and the line that
 * .env.example and the README show for it. Options passed to the plugin use the camelCase keys.
 */
export const SETTINGS = {
  host: { env: 'HOST', schema: Type.String({ minLength: 1, default: '0.0.0.0' }), doc: 'Interface to listen on (npm start only)' },
  port: { env: 'PORT', schema: integer(0, 65535, 3000), doc: 'TCP port to listen on (npm start only)' },
  logLevel: {
    env: 'LOG_LEVEL',
    schema: Type.Union([
      Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'),
      Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')
    ], { default: 'info' }),
    doc: 'pino log level (npm start only)'
  },
  maxPayload: { env: 'MAX_PAYLOAD', schema: integer(128, 16 * MiB, 64 * KiB), doc: 'Largest client frame in bytes; a larger one closes the connection with 1009' },
  sendQueueSize: { env: 'SEND_QUEUE_SIZE', schema: integer(1, 1_000_000, 1024), doc: 'Messages queued per connection at most' },
  sendQueueBytes: { env: 'SEND_QUEUE_BYTES', schema: integer(1024, 1024 * MiB, 1 * MiB), doc: 'Bytes queued per connection at most' },
  writeBatch: { env: 'WRITE_BATCH', schema: integer(1, 100_000, 256), doc: 'Frames written to a socket per flush at most' },
  writeHighWater: { env: 'WRITE_HIGH_WATER', schema: integer(1024, 64 * MiB, 64 * KiB), doc: 'Socket buffer in bytes above which the write pump waits, so waiting messages keep their priority' },
  perMessageDeflate: { env: 'PER_MESSAGE_DEFLATE', schema: Type.Boolean({ default: false }), doc: 'Compress messages with permessage-deflate for clients that offer it (true/false); each message is compressed once for all recipients' },
  perMessageDeflateThreshold: { env: 'PER_MESSAGE_DEFLATE_THRESHOLD', schema: integer(0, 16 * MiB, 1024), doc: 'Messages smaller than this many bytes are sent uncompressed' },
  maxConnections: { env: 'MAX_CONNECTIONS', schema: integer(0, 10_000_000, 0), doc: 'Open connections at most; an upgrade over it gets 503 server_full (0: no limit)' },
  maxConnectionsPerIp: { env: 'MAX_CONNECTIONS_PER_IP', schema: integer(0, 10_000_000, 0), doc: 'Open connections per client address at most; over it 429 connection_limit (0: no limit; behind a proxy set TRUST_PROXY)' },
  maxConnectionsPerUser: { env: 'MAX_CONNECTIONS_PER_USER', schema: integer(0, 10_000_000, 0), doc: 'Open connections per token sub at most; over it 429 connection_limit (0: no limit)' },
  trustProxy: { env: 'TRUST_PROXY', schema: Type.String({ pattern: '^(|true|false|[0-9a-fA-F.:/, ]+)$', default: '' }), doc: 'Proxies whose X-Forwarded-For is believed: their addresses or CIDRs, comma-separated, or true for any (spoofable); empty believes none (npm start only)' },
  maxEventLoopDelayMs: { env: 'MAX_EVENT_LOOP_DELAY_MS', schema: integer(0, 60_000, 1000), doc: 'Event-loop delay over which new upgrades and /readyz get 503 under_pressure (0: not checked)' },
  maxHeapUsedBytes: { env: 'MAX_HEAP_USED_BYTES', schema: integer(0, 1024 * 1024 * MiB, 0), doc: 'Heap used over which new upgrades and /readyz get 503 under_pressure (0: not checked)' },
  maxRssBytes: { env: 'MAX_RSS_BYTES', schema: integer(0, 1024 * 1024 * MiB, 0), doc: 'RSS over which new upgrades and /readyz get 503 under_pressure (0: not checked)' },
  maxRoomsPerConnection: { env: 'MAX_ROOMS_PER_CONNECTION', schema: integer(1, 100_000, 64), doc: 'Rooms one connection may join' },
  rateLimitPerSec: { env: 'RATE_LIMIT_PER_SEC', schema: integer(1, 1_000_000, 100), doc: 'Ops per second per connection (token bucket refill)' },
  rateLimitBurst: { env: 'RATE_LIMIT_BURST', schema: integer(1, 1_000_000, 200), doc: 'Token bucket size per connection' },
  allowedOrigins: { env: 'ALLOWED_ORIGINS', schema: Type.String({ default: '' }), doc: 'Comma-separated Origins allowed to upgrade; empty allows any' },
  heartbeatMs: { env: 'HEARTBEAT_MS', schema: integer(100, 3_600_000, 25_000), doc: 'Ping interval; a peer that missed the previous pong is terminated' },
  shutdownTimeoutMs: { env: 'SHUTDOWN_TIMEOUT_MS', schema: integer(0, 600_000, 10_000), doc: 'How long shutdown waits for outboxes and tasks to drain' },
  allowClientBroadcast: { env: 'ALLOW_CLIENT_BROADCAST', schema: Type.Boolean({ default: false }), doc: 'Let clients use the broadcast op (true/false)' },
  demo: { env: 'DEMO', schema: Type.Boolean({ default: true }), doc: 'Serve the demo chat page at / and the browser client under /client/ (true/false)' },
  jwtSecret: { env: 'JWT_SECRET', schema: Type.String({ default: '' }), doc: 'Shared secret for HS256/384/512 connection tokens; set one of JWT_SECRET, JWT_PUBLIC_KEY, JWKS_URL' },
  jwtPublicKey: { env: 'JWT_PUBLIC_KEY', schema: Type.String({ default: '' }), doc: 'Path of a PEM public key for RS*/PS*/ES*/EdDSA connection tokens' },
  jwksUrl: { env: 'JWKS_URL', schema: Type.String({ default: '' }), doc: 'JWKS URL for connection tokens (cached, refetched for an unknown kid at most once a second, 3 s timeout)' },
  jwtIssuer: { env: 'JWT_ISSUER', schema: Type.String({ default: '' }), doc: 'Required iss of connection tokens; empty checks none' },
  jwtAudience: { env: 'JWT_AUDIENCE', schema: Type.String({ default: '' }), doc: 'Required aud of connection tokens; empty checks none' },
  jwtClockToleranceS: { env: 'JWT_CLOCK_TOLERANCE_S', schema: integer(0, 3600, 5), doc: 'Clock skew allowed when checking exp and nbf, in seconds' },
  allowAnonymous: { env: 'ALLOW_ANONYMOUS', schema: Type.Boolean({ default: false }), doc: 'With a JWT key set, also accept connections without a token (true/false)' },
  roomsConfig: { env: 'ROOMS_CONFIG', schema: Type.String({ default: '' }), doc: 'Path of a JSON file of room namespaces (who may join, publish, read history, see presence); empty leaves every room open' },
  apiKey: { env: 'API_KEY', schema: Type.String({ default: '' }), doc: 'Bearer token for the HTTP API; empty disables the /api routes' },
  apiKeys: { env: 'API_KEYS', schema: Type.String({ default: '' }), doc: 'More HTTP API keys, comma-separated: key (every scope) or key:scope+scope (publish, broadcast, tasks, read)' },
  defaultTask: { env: 'DEFAULT_TASK', schema: Type.String({ minLength: 1, maxLength: 64, default: 'echo' }), doc: 'Task that the text command task:<text> runs' },
  broker: { env: 'BROKER', schema: Type.Union([Type.Literal('memory'), Type.Literal('redis'), Type.Literal('nats'), Type.Literal('amqp')], { default: 'memory' }), doc: 'Fan-out between nodes: memory (one node), redis (REDIS_URL), nats (NATS_URL) or amqp (AMQP_URL); nats and amqp need HISTORY=redis or postgres; see docs/scaling.md' },
  history: { env: 'HISTORY', schema: Type.Union([Type.Literal(''), Type.Literal('memory'), Type.Literal('redis'), Type.Literal('postgres')], { default: '' }), doc: 'Where room streams (seq, epoch, history) live: memory, redis or postgres (DATABASE_URL); empty follows BROKER' },
  presence: { env: 'PRESENCE', schema: Type.Union([Type.Literal(''), Type.Literal('memory'), Type.Literal('redis')], { default: '' }), doc: 'Where presence lives: memory (this node only) or redis; empty is redis when BROKER or HISTORY is' },
  redisUrl: { env: 'REDIS_URL', schema: Type.String({ pattern: '^\\s*rediss?://[^,\\s]+(\\s*,\\s*rediss?://[^,\\s]+)*\\s*$', default: 'redis://127.0.0.1:6379' }), doc: 'Redis for BROKER/HISTORY/PRESENCE=redis; several comma-separated URLs are shards (rooms spread by consistent hashing)' },
  redisPrefix: { env: 'REDIS_PREFIX', schema: Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,64}$', default: 'switchboard:' }), doc: 'Prefix of every Redis key and channel, so several deployments can share one Redis' },
  redisTimeoutMs: { env: 'REDIS_TIMEOUT_MS', schema: integer(100, 60_000, 5000), doc: 'A Redis command unanswered this long fails (a publish answers unavailable)' },
  natsUrl: { env: 'NATS_URL', schema: Type.String({ pattern: '^\\s*(nats|tls)://[^,\\s]+(\\s*,\\s*(nats|tls)://[^,\\s]+)*\\s*$', default: 'nats://127.0.0.1:4222' }), doc: 'NATS servers for BROKER=nats, comma-separated' },
  natsPrefix: { env: 'NATS_PREFIX', schema: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', default: 'switchboard' }), doc: 'First token of every NATS subject, so deployments can share a NATS server' },
  amqpUrl: { env: 'AMQP_URL', schema: Type.String({ pattern: '^amqps?://', default: 'amqp://guest:guest@127.0.0.1:5672' }), doc: 'RabbitMQ for BROKER=amqp' },
  amqpExchange: { env: 'AMQP_EXCHANGE', schema: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,200}$', default: 'switchboard' }), doc: 'Base name of the RabbitMQ exchanges (<name>.rooms or <name>.fanout, and <name>.broadcast)' },
  amqpRouting: { env: 'AMQP_ROUTING', schema: Type.Union([Type.Literal('rooms'), Type.Literal('fanout')], { default: 'rooms' }), doc: 'rooms: each node receives only the rooms it has members in (a direct exchange, one binding per room); fanout: every node receives every message' },
  databaseUrl: { env: 'DATABASE_URL', schema: Type.String({ pattern: '^postgres(ql)?://', default: 'postgres://postgres@127.0.0.1:5432/test' }), doc: 'PostgreSQL for HISTORY=postgres' },
  databaseSchema: { env: 'DATABASE_SCHEMA', schema: Type.String({ pattern: '^[a-z_][a-z0-9_]{0,62}$', default: 'switchboard' }), doc: 'Schema of the HISTORY=postgres tables, created and migrated at boot' },
  databaseTimeoutMs: { env: 'DATABASE_TIMEOUT_MS', schema: integer(100, 60_000, 5000), doc: 'A PostgreSQL query unanswered this long fails (a publish answers unavailable)' },
  presenceTtlMs: { env: 'PRESENCE_TTL_MS', schema: integer(1000, 3_600_000, 60_000), doc: 'Redis: members (and nodes in GET /api/nodes) of a node that stopped refreshing them are gone after this long' },
  positionCheckMs: { env: 'POSITION_CHECK_MS', schema: integer(100, 600_000, 5000), doc: 'Redis: how often each node compares its rooms with their streams and repairs from history what pub/sub missed' },
  nodeId: { env: 'NODE_ID', schema: Type.String({ pattern: '^[A-Za-z0-9_.:-]{0,64}$', default: '' }), doc: 'This node in GET /api/nodes; empty makes one from the host name and process id' },
  historySize: { env: 'HISTORY_SIZE', schema: integer(0, 1_000_000, 256), doc: 'Messages kept per room for history and recovery; 0 turns history off' },
  historyTtlMs: { env: 'HISTORY_TTL_MS', schema: integer(1000, 30 * 86_400_000, 300_000), doc: 'A room stream lives this long after its last publish; kept messages expire after it too' },
  historyMaxBytes: { env: 'HISTORY_MAX_BYTES', schema: integer(1 * MiB, 64 * 1024 * MiB, 256 * MiB), doc: 'Memory engine: bytes of history in all rooms; over it the least recently published streams are evicted (their epoch changes)' },
  recoveryMax: { env: 'RECOVERY_MAX', schema: integer(0, 1_000_000, 1000), doc: 'Most messages a join with since replays; more missed gives recovered:false, reason too_many' },
  presenceInfoMaxBytes: { env: 'PRESENCE_INFO_MAX_BYTES', schema: integer(0, 64 * KiB, 1024), doc: 'Largest JSON of the info object a join may carry for presence' },
  workers: { env: 'WORKERS', schema: integer(1, 1024, Math.max(1, availableParallelism() - 1)), doc: 'Worker threads (default: cores - 1, at least 1)' },
  workerQueueSize: { env: 'WORKER_QUEUE_SIZE', schema: integer(1, 1_000_000, 1024), doc: 'Tasks waiting for a worker at most; more are answered overloaded' },
  taskTimeoutMs: { env: 'TASK_TIMEOUT_MS', schema: integer(1, 3_600_000, 10_000), doc: 'A running task is aborted after this long' },
  tasksModule: { env: 'TASKS_MODULE', schema: Type.String({ default: '' }), doc: 'Path of an ESM module whose named exports are extra task handlers' },
  maxTasksPerConnection: { env: 'MAX_TASKS_PER_CONNECTION', schema: integer(1, 1_000_000, 32), doc: 'Tasks one connection may have queued or running' },
  maxTaskRetries: { env: 'MAX_TASK_RETRIES', schema: integer(0, 100, 5), doc: 'Largest retries value a task may ask for' },
  deadLetterSize: { env: 'DEAD_LETTER_SIZE', schema: integer(0, 1_000_000, 1000), doc: 'Failed tasks kept in the dead-letter list' },
  idempotencyTtlMs: { env: 'IDEMPOTENCY_TTL_MS', schema: integer(0, 86_400_000, 300_000), doc: 'How long a task key remembers its result, and a publish id its seq' }
} as const satisfies Record<string, { env: string, schema: TSchema, doc: string }>

export type SettingName = keyof typeof SETTINGS
export type Config = { -readonly [K in SettingName]: Static<(typeof SETTINGS)[K]['schema']> }
export type ConfigOverrides = Partial<Config>

export class ConfigError extends Error {
  override name = 'ConfigError'
}

const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[]
const checks = Object.fromEntries(
  SETTING_NAMES.map(name => [name, TypeCompiler.Compile(SETTINGS[name].schema)])
) as unknown as Record<SettingName, ReturnType<typeof TypeCompiler.Compile>>

/** Describes what a setting accepts, for error messages. */
export function expectedForm (name: SettingName): string {
  const schema = SETTINGS[name].schema as TSchema
  if (schema.type === 'integer') return `an integer from ${schema.minimum} to ${schema.maximum}`
  if (schema.type === 'boolean') return 'true or false'
  if (Array.isArray(schema.anyOf)) return `one of ${schema.anyOf.map((s: TSchema) => s.const).join(', ')}`
  if (schema.minLength !== undefined) return `a string of ${schema.minLength} to ${schema.maxLength ?? 'any number of'} characters`
  if (schema.pattern !== undefined) return `a string matching ${schema.pattern}`
  return 'a string'
}

function fromEnvString (name: SettingName, raw: string): unknown {
  const schema = SETTINGS[name].schema as TSchema
  const text = raw.trim()
  if (schema.type === 'integer') return /^-?\d+$/.test(text) ? Number(text) : raw
  if (schema.type === 'boolean') {
    const lower = text.toLowerCase()
    if (lower === 'true' || lower === '1') return true
    if (lower === 'false' || lower === '0') return false
    return raw
  }
  return text
}

/**
 * Resolves every setting: an explicit option wins, then the environment variable, then the default.
 * Throws a ConfigError naming the variable (or option) and the expected form for the first bad value.
 */
export function loadConfig (env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Config {
  const config: Record<string, unknown> = {}
  for (const name of SETTING_NAMES) {
    const setting = SETTINGS[name]
    const override = overrides[name]
    const raw = env[setting.env]
    let value: unknown
    let source: string
    if (override !== undefined) {
      value = override
      source = `option ${name}`
    } else if (raw !== undefined && raw !== '') {
      value = fromEnvString(name, raw)
      source = setting.env
    } else {
      config[name] = setting.schema.default
      continue
    }
    if (!checks[name].Check(value)) {
      throw new ConfigError(`${source} must be ${expectedForm(name)} (got ${JSON.stringify(override !== undefined ? override : raw)})`)
    }
    config[name] = value
  }
  const unknown = Object.keys(overrides).filter(key => !Object.hasOwn(SETTINGS, key))
  if (unknown.length > 0) {
    throw new ConfigError(`unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`)
  }
  return config as Config
}

/** TRUST_PROXY in the form Fastify's trustProxy takes: false, true, or a list of addresses and CIDRs. */
export function parseTrustProxy (value: string): boolean | string {
  const text = value.trim()
  if (text === '' || text === 'false') return false
  return text === 'true' ? true : text
}

export function parseAllowedOrigins (value: string): Set<string> | undefined {
  const origins = value.split(',').map(origin => origin.trim()).filter(origin => origin !== '')
  return origins.length === 0 ? undefined : new Set(origins)
}
