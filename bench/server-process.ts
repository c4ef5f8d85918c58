import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs'
import { get } from 'node:http'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Dialect } from './peer.js'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

export const SERVER_NAMES = ['switchboard', 'ws', 'fastify', 'socketio', 'bun', 'node-floor', 'ws-features', 'features-in-app', 'switchboard-deflate', 'switchboard-auth', 'switchboard-nohistory', 'switchboard-prev'] as const
export type ServerName = (typeof SERVER_NAMES)[number]
/** What a run compares unless told otherwise: Switchboard, the four baselines and the Node floor. */
export const DEFAULT_SERVERS: ServerName[] = ['switchboard', 'ws', 'fastify', 'socketio', 'bun', 'node-floor']
/** Servers with no piscina pool of their own here: they do not run the tasks workload. */
export const TASKLESS_SERVERS: readonly ServerName[] = ['socketio', 'bun', 'node-floor']

interface ServerDefinition {
  entry: string
  dialect: Dialect
  env: Record<string, string>
  /** The tree that holds `entry` and that the server runs in; this repository unless given. */
  root?: () => string
  /** Bun runs `entry` itself (TypeScript included); Node runs it with --import=tsx. */
  runtime?: 'bun'
}

/** The Bun binary of the npm package @oven/bun-linux-x64 (a dev dependency used by the bench only). */
const BUN = join(ROOT, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun')

// Publishers send thousands of ops per second; the defaults would rate-limit them.
const SWITCHBOARD_ENV = { LOG_LEVEL: 'warn', WORKERS: '1', RATE_LIMIT_PER_SEC: '1000000', RATE_LIMIT_BURST: '1000000', PER_MESSAGE_DEFLATE: 'false' }

const SERVERS: Record<ServerName, ServerDefinition> = {
  switchboard: { entry: 'server.ts', dialect: 'v1', env: SWITCHBOARD_ENV },
  ws: { entry: 'bench/baselines/ws-server.ts', dialect: 'v1', env: {} },
  fastify: { entry: 'bench/baselines/fastify-server.ts', dialect: 'v1', env: {} },
  socketio: { entry: 'bench/baselines/socketio-server.ts', dialect: 'socketio', env: {} },
  bun: { entry: 'bench/baselines/bun-server.ts', dialect: 'v1', env: {}, runtime: 'bun' },
  'node-floor': { entry: 'bench/baselines/node-floor-server.ts', dialect: 'v1', env: {} },
  // Bare ws with Switchboard's per-op features written inline; rate-limited as Switchboard is here.
  'ws-features': { entry: 'bench/baselines/ws-features-server.ts', dialect: 'v1', env: { RATE_LIMIT_PER_SEC: '1000000', RATE_LIMIT_BURST: '1000000' } },
  // The same handler on a host Fastify server that runs the Switchboard app beside it, configured as switchboard is.
  'features-in-app': { entry: 'bench/baselines/features-in-app-server.ts', dialect: 'v1', env: SWITCHBOARD_ENV },
  // The same code with compression offered: it only changes anything for clients that offer it too.
  'switchboard-deflate': { entry: 'server.ts', dialect: 'v1', env: { ...SWITCHBOARD_ENV, PER_MESSAGE_DEFLATE: 'true' } },
  // Permissions on: a JWT key (the bench connects anonymously, as ALLOW_ANONYMOUS lets it) and a
  // namespace file, so every join decides capabilities and every publish checks them.
  'switchboard-auth': {
    entry: 'server.ts',
    dialect: 'v1',
    env: { ...SWITCHBOARD_ENV, JWT_SECRET: 'bench-secret-of-at-least-32-bytes', ALLOW_ANONYMOUS: 'true', ROOMS_CONFIG: 'bench/rooms-open.json' }
  },
  // History off (seqs and publish ids still work): what keeping HISTORY_SIZE messages per room costs.
  'switchboard-nohistory': { entry: 'server.ts', dialect: 'v1', env: { ...SWITCHBOARD_ENV, HISTORY_SIZE: '0' } },
  'switchboard-prev': {
    entry: 'server.ts',
    dialect: 'v1',
    env: SWITCHBOARD_ENV,
    root: () => previousTreeOf()
  }
}

/** Where switchboard-prev's revision was extracted by applyPrevFlag. */
export function previousTreeOf (): string {
  if (previousTree === undefined) throw new Error('switchboard-prev needs --prev=<git revision>')
  return previousTree
}

/** Where switchboard-prev's revision was extracted, once a --prev flag was applied. */
let previousTree: string | undefined

/** A --prev=REV flag: switchboard-prev runs revision REV; without one it cannot be among `servers`. */
export function applyPrevFlag (rev: string | undefined, servers: readonly ServerName[]): void {
  if (rev !== undefined) {
    try {
      console.error(`switchboard-prev runs from ${previousRevision(rev)}`)
    } catch (error) {
      console.error(`--prev=${rev}: ${(error as Error).message}`)
      process.exit(2)
    }
  } else if (servers.includes('switchboard-prev')) {
    console.error('switchboard-prev needs --prev=<git revision>')
    process.exit(2)
  }
}

/**
 * Makes `switchboard-prev` the server of git revision `rev`: its files (git archive, so the repository's
 * worktrees and index stay untouched) in /tmp/switchboard-prev-<commit>, with this tree's node_modules.
 */
function previousRevision (rev: string): string {
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
  const commit = git('rev-parse', '--verify', '--short=12', `${rev}^{commit}`)
  const tree = join(tmpdir(), `switchboard-prev-${commit}`)
  if (!existsSync(tree)) {
    // Extracted beside the final path and renamed into place, so an interrupted extraction is never reused.
    const staging = mkdtempSync(`${tree}.partial-`)
    try {
      execFileSync('tar', ['-x', '-C', staging], { input: execFileSync('git', ['archive', commit], { cwd: ROOT, maxBuffer: 1 << 30 }) })
      symlinkSync(join(ROOT, 'node_modules'), join(staging, 'node_modules'))
      renameSync(staging, tree)
    } catch (error) {
      rmSync(staging, { recursive: true, force: true })
      throw error
    }
  }
  previousTree = tree
  return tree
}

const TAIL_BYTES = 4096
const READY_TIMEOUT_MS = 30_000

function hasTaskset (): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export const TASKSET = hasTaskset()

/** Pins this process (every thread it has now; later ones inherit) to one CPU. */
export function pinSelf (cpu: number): boolean {
  if (!TASKSET) return false
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' })
  return true
}

/**
 * Every connection is a file descriptor in this process and in the server, which inherits our limit:
 * below `needed`, this process runs itself again under `ulimit -n` (up to the hard limit) and exits with it.
 */
export function ensureOpenFiles (needed: number): void {
  const files = openFileLimit()
  if (files.soft >= needed) return
  if (files.hard >= needed && process.env.BENCH_NOFILE_RAISED === undefined) {
    const relaunch = spawnSync('/bin/sh', ['-c', `ulimit -n ${needed} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, BENCH_NOFILE_RAISED: '1' }
    })
    process.exit(relaunch.status ?? 1)
  }
  console.error(`warning: ulimit -n is ${files.soft} (hard ${files.hard}); ${needed} are needed, connections may fail with EMFILE`)
}

/** The soft RLIMIT_NOFILE of this process, which spawned servers inherit. */
export function openFileLimit (): { soft: number, hard: number } {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find(l => l.startsWith('Max open files')) ?? ''
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/).map(v => (v === 'unlimited' ? Infinity : Number(v)))
  return { soft: soft ?? 1024, hard: hard ?? 1024 }
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

export interface ProcSample {
  at: number
  /** user + system CPU seconds of every thread of the process. */
  cpuSeconds: number
  rssBytes: number
  peakRssBytes: number
}

export function sampleProcess (pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024
  return { at: performance.now(), cpuSeconds: ticks / CLOCK_TICKS, rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM') }
}

/** CPU use between two samples as a percentage of one core. */
export function cpuPercent (from: ProcSample, to: ProcSample): number {
  return (100 * (to.cpuSeconds - from.cpuSeconds)) / ((to.at - from.at) / 1000)
}

export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

function canConnect (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

export interface StartOptions {
  /** Pin the server to this CPU with taskset (its worker threads inherit it). */
  cpu: number | undefined
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs: string[]
  /** Settings on top of the server's own, e.g. a smaller HISTORY_MAX_BYTES. */
  env?: Record<string, string>
}

const running = new Set<ChildProcess>()

// A crashed or interrupted harness must not leave servers behind, pinned to a core and holding a port.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of running) child.kill('SIGKILL')
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15))
  })
}

/** A server under test running as a child process on 127.0.0.1. */
export class ServerProcess {
  readonly host = '127.0.0.1'
  readonly dialect: Dialect
  exit: { code: number | null, signal: NodeJS.Signals | null } | undefined
  private output = ''
  private readonly exited: Promise<void>
  private stopping = false

  private constructor (readonly name: ServerName, readonly port: number, private readonly child: ChildProcess) {
    this.dialect = SERVERS[name].dialect
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-TAIL_BYTES)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', (chunk: Buffer) => {
      keep(chunk)
      process.stderr.write(chunk.toString().replace(/^(?=.)/gm, `[${name}] `))
    })
    running.add(child)
    this.exited = new Promise(resolve => {
      child.once('exit', (code, signal) => {
        running.delete(child)
        this.exit = { code, signal }
        resolve()
      })
      child.once('error', error => {
        running.delete(child)
        this.output += `\n${error.message}`
        this.exit ??= { code: null, signal: null }
        resolve()
      })
    })
  }

  get pid (): number {
    return this.child.pid as number
  }

  /** Whether it exited on its own (a crash), as opposed to being stopped by us. */
  get crashed (): boolean {
    return this.exit !== undefined && !this.stopping
  }

  /** The last TAIL_BYTES of what the server wrote to stdout and stderr. */
  get lastOutput (): string {
    return this.output
  }

  describeExit (): string {
    return `${this.name} exited (code ${this.exit?.code}, signal ${this.exit?.signal}); last output:\n${this.output.trim()}`
  }

  /** Spawns the server and resolves once it accepts TCP connections (it listens only when fully booted). */
  static async start (name: ServerName, options: StartOptions): Promise<ServerProcess> {
    const definition = SERVERS[name]
    const root = definition.root?.() ?? ROOT
    const port = await freePort()
    // Node flags (--cpu-prof) do not apply to Bun.
    const [runtime, runtimeArgs] = definition.runtime === 'bun'
      ? [BUN, [definition.entry]]
      : [process.execPath, [...options.nodeArgs, '--import=tsx', definition.entry]]
    // taskset execs the runtime, so the child's pid is the server's.
    const [command, args] = options.cpu === undefined
      ? [runtime, runtimeArgs]
      : ['taskset', ['-c', String(options.cpu), runtime, ...runtimeArgs]]
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, ...definition.env, ...options.env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const server = new ServerProcess(name, port, child)
    const deadline = performance.now() + READY_TIMEOUT_MS
    while (!(await canConnect(port))) {
      if (server.exit !== undefined) throw new Error(`server failed to start: ${server.describeExit()}`)
      if (performance.now() > deadline) {
        await server.stop()
        throw new Error(`server ${name} did not listen within ${READY_TIMEOUT_MS} ms`)
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    return server
  }

  sample (): ProcSample {
    return sampleProcess(this.pid)
  }

  /** SIGTERM, so that Switchboard shuts down cleanly (and --cpu-prof writes its profile); SIGKILL after `graceMs`. */
  async stop (graceMs = 3000): Promise<void> {
    if (this.exit !== undefined) return
    this.stopping = true
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(timer)
  }

  /** Switchboard's Prometheus text from GET /metrics. */
  scrapeMetrics (): Promise<string> {
    return new Promise((resolve, reject) => {
      get({ host: this.host, port: this.port, path: '/metrics' }, response => {
        let body = ''
        response.setEncoding('utf8')
        response.on('data', (chunk: string) => { body += chunk })
        response.on('end', () => resolve(body))
      }).on('error', reject)
    })
  }
}

/** Samples of one metric family as `{label=value,…}` → value, zero-valued samples left out. */
export function metricSamples (text: string, family: string): Record<string, number> {
  const samples: Record<string, number> = {}
  for (const line of text.split('\n')) {
    if (!line.startsWith(family)) continue
    const match = /^(\w+)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (match === null || match[1] !== family) continue
    const value = Number(match[3])
    if (value !== 0) samples[(match[2] ?? '').replace(/[{}"]/g, '')] = value
  }
  return samples
}
