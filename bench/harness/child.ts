import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'

/** Messages between the bench and a worker process (structured clone, so typed arrays pass as they are). */
export type ToWorker =
  | { type: 'run'; phase: 'warmup' | 'measure'; durationMs: number }
  | { type: 'cpu' }
  | { type: 'stop' }
export type FromWorker =
  | { type: 'ready'; info?: Record<string, unknown> }
  | {
      type: 'done'
      ops: number
      allowed: number
      elapsedMs: number
      latencies: Float64Array
      /** Every operation that ended during the run, those after the deadline too (what the store did). */
      completed?: number
    }
  | { type: 'result'; value: unknown }
  | { type: 'error'; message: string }

/**
 * A worker process running a TypeScript file under the same loader as the bench (its execArgv),
 * answering one request at a time.
 */
export class Worker {
  private constructor(
    readonly process: ChildProcess,
    readonly info: Record<string, unknown>,
  ) {}

  static async start(script: URL, config: unknown, extraExecArgv: string[] = []): Promise<Worker> {
    const child = fork(script, [JSON.stringify(config)], {
      execArgv: [...process.execArgv, ...extraExecArgv],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const first = (await Worker.next(child)) as FromWorker
    if (first.type !== 'ready') {
      child.kill('SIGKILL')
      throw new Error(`worker ${script.pathname} failed to start: ${describeMessage(first)}`)
    }
    return new Worker(child, first.info ?? {})
  }

  private static next(child: ChildProcess): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: unknown) => {
        cleanup()
        resolve(m)
      }
      const onExit = (code: number | null, signal: string | null) => {
        cleanup()
        reject(new Error(`worker exited (code ${code}, signal ${signal}) before answering`))
      }
      const cleanup = () => {
        child.off('message', onMessage)
        child.off('exit', onExit)
      }
      child.on('message', onMessage)
      child.on('exit', onExit)
    })
  }

  async request(message: ToWorker): Promise<FromWorker> {
    const answer = Worker.next(this.process)
    this.process.send(message)
    const m = (await answer) as FromWorker
    if (m.type === 'error') throw new Error(`worker: ${m.message}`)
    return m
  }

  /**
   * CPU time the worker's server has used so far, in µs (user + system; answered by serve()): read
   * before and after a measured period, it gives CPU per request, which a busy machine blurs far
   * less than requests per second.
   */
  async cpuMicros(): Promise<number> {
    const m = await this.request({ type: 'cpu' })
    if (m.type !== 'result' || typeof m.value !== 'number') throw new Error('worker gave no CPU time')
    return m.value
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return
    const exited = once(this.process, 'exit')
    this.process.send({ type: 'stop' } satisfies ToWorker)
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }
}

function describeMessage(m: FromWorker): string {
  return m.type === 'error' ? m.message : JSON.stringify(m)
}

/** Worker side: the config the bench passed, and a loop answering its requests. */
export function workerConfig<T>(): T {
  const raw = process.argv[2]
  if (raw === undefined) throw new Error('worker started without a config argument')
  return JSON.parse(raw) as T
}

export function send(message: FromWorker): void {
  process.send?.(message)
}

let cpuReader = (): number => {
  const u = process.cpuUsage()
  return u.user + u.system
}

/** Where the worker's server runs in another process (e.g. a server it spawned): its CPU time, µs. */
export function readCpuWith(reader: () => number): void {
  cpuReader = reader
}

export function serve(
  handler: (m: ToWorker) => Promise<FromWorker | undefined>,
  teardown: () => Promise<void>,
) {
  process.on('message', (m: ToWorker) => {
    if (m.type === 'cpu') {
      send({ type: 'result', value: cpuReader() })
      return
    }
    if (m.type === 'stop') {
      teardown().then(
        () => process.exit(0),
        () => process.exit(1),
      )
      return
    }
    handler(m).then(
      (answer) => answer && send(answer),
      (error: unknown) =>
        send({ type: 'error', message: error instanceof Error ? error.message : String(error) }),
    )
  })
  // The bench went away: do not linger.
  process.on('disconnect', () => process.exit(0))
}
