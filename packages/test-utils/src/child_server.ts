import type { ChildProcess } from 'node:child_process'
import { accepts } from './free_port.js'

/** Children still running, killed if this process exits without stopping them. */
const running = new Set<ChildProcess>()
let exitHookInstalled = false

/** Never leave a server behind: kill the children on exit, and on SIGINT/SIGTERM when nobody else handles them. */
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  const killAll = () => {
    for (const child of running) child.kill('SIGKILL')
  }
  process.once('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll()
      // Act as the default handler would only if nobody else listens.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    })
  }
}

/**
 * A server process this suite owns and harms on purpose: frozen with SIGSTOP (it stops answering but
 * keeps its sockets open, the worst kind of outage), thawed with SIGCONT, killed with SIGKILL, restarted
 * on the same port.
 */
export class ChildServer {
  #child: ChildProcess | undefined
  #output = ''
  readonly #start: () => ChildProcess
  readonly port: number
  readonly name: string

  constructor(name: string, port: number, start: () => ChildProcess) {
    this.name = name
    this.port = port
    this.#start = start
  }

  /** Starts the process and resolves once its port accepts connections (60 s by default: a cold JVM on a busy machine). */
  async start(timeoutMs = 60_000): Promise<void> {
    installExitHook()
    const child = this.#start()
    this.#child = child
    running.add(child)
    child.once('exit', () => running.delete(child))
    const keep = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString()).slice(-4000)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    let spawnError: Error | undefined
    child.once('error', (error) => {
      spawnError = error
    })
    const deadline = Date.now() + timeoutMs
    while (!(await accepts(this.port))) {
      const failure =
        spawnError !== undefined
          ? `could not be started (${spawnError.message})`
          : child.exitCode !== null || child.signalCode !== null
            ? `exited with ${child.exitCode ?? child.signalCode}`
            : Date.now() > deadline
              ? `did not answer on port ${this.port} within ${timeoutMs} ms`
              : undefined
      if (failure !== undefined) {
        child.kill('SIGKILL')
        throw new Error(`${this.name} ${failure}. Output:\n${this.#output}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** The running process's id, if one was started. */
  get pid(): number | undefined {
    return this.#child?.pid
  }

  pause(): void {
    this.#signal('SIGSTOP')
  }

  resume(): void {
    this.#signal('SIGCONT')
  }

  /** SIGKILL (after SIGCONT, so a frozen process dies at once) and waits for the exit. */
  async kill(): Promise<void> {
    const child = this.#child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    child.kill('SIGCONT')
    await exited
  }

  async restart(): Promise<void> {
    await this.kill()
    await this.start()
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.#child === undefined || this.#child.exitCode !== null) throw new Error(`${this.name} is not running`)
    this.#child.kill(signal)
  }
}
