/**
 * A server process under valgrind's callgrind with counting off until asked: the instructions of
 * the requests measured alone, start-up and warm-up left out. Instruction counts, unlike CPU time,
 * do not move with the load of a shared machine. Needs valgrind with callgrind_control.
 */
import { type ChildProcess, execFile, type SpawnOptions, spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export class CountedProcess {
  private stderrText = ''

  private constructor(
    readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    child.stderr?.on('data', (d: Buffer) => {
      this.stderrText += d.toString()
    })
  }

  /** `node <args>` under callgrind, counting nothing yet. stdio as spawn() takes it (stderr piped). */
  static start(nodeArgs: string[], stdio: SpawnOptions['stdio']): CountedProcess {
    // V8 writes and rewrites machine code: valgrind must notice code changed on the heap.
    return CountedProcess.startProgram(process.execPath, nodeArgs, stdio, ['--smc-check=all-non-file'])
  }

  /** Any program under callgrind (e.g. a redis-server counted beside the server it serves). */
  static startProgram(
    program: string,
    args: string[],
    stdio: SpawnOptions['stdio'],
    valgrindArgs: string[] = [],
  ): CountedProcess {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-callgrind-'))
    const child = spawn(
      'valgrind',
      [
        '--tool=callgrind',
        '--instr-atstart=no',
        ...valgrindArgs,
        `--callgrind-out-file=${join(dir, 'out')}`,
        program,
        ...args,
      ],
      { stdio },
    )
    return new CountedProcess(child, dir)
  }

  get stderr(): string {
    return this.stderrText
  }

  /** Turns counting on or off. */
  async counting(on: boolean): Promise<void> {
    await run('callgrind_control', ['-i', on ? 'on' : 'off', String(this.child.pid)], { timeout: 120_000 })
  }

  /**
   * The instructions counted, once the process has exited after `stop` (which must make it exit
   * cleanly, so that callgrind writes its counts). The caller still calls kill() when done.
   */
  async total(stop: () => void): Promise<number> {
    const exited = once(this.child, 'exit')
    stop()
    await exited
    const m = /^totals:\s+(\d+)/m.exec(readFileSync(join(this.dir, 'out'), 'utf8'))
    if (!m) throw new Error(`no instruction count in callgrind's output:\n${this.stderrText}`)
    return Number(m[1]!)
  }

  /** Copies callgrind's output (after total()) to `path`, for callgrind_annotate. */
  saveTo(path: string): void {
    copyFileSync(join(this.dir, 'out'), path)
  }

  /** Ends the process if it still runs and removes its files (every count ends with it). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
    rmSync(this.dir, { recursive: true, force: true })
  }
}
