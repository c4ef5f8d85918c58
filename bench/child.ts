import { spawn, type ChildProcess } from 'node:child_process'
import { ROOT } from './server-process.js'

/**
 * A helper process of the harness (the sweep writer, the TCP echo floor, scale's load generators) with an IPC channel, pinned to
 * `cpu` when given: these floors must run where the servers run to mean anything.
 */
export function spawnHelper (entry: string, cpu: number | undefined, entryArgs: string[] = []): ChildProcess {
  const node = [process.execPath, '--import=tsx', entry, ...entryArgs]
  const [command, args] = cpu === undefined ? [node[0] as string, node.slice(1)] : ['taskset', ['-c', String(cpu), ...node]]
  return spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
}

/** The first IPC message from `child` for which `pick` returns a value; rejects if the child exits first. */
export function nextMessage<T> (child: ChildProcess, pick: (message: Record<string, unknown>) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: Record<string, unknown>): void => {
      const value = pick(message)
      if (value === undefined) return
      child.off('message', onMessage)
      child.off('exit', onExit)
      resolve(value)
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      reject(new Error(`helper process ${child.spawnargs.join(' ')} exited (code ${code}, signal ${signal})`))
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}
