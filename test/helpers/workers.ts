import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { WorkerJob, WorkerReport } from '../fixtures/worker-protocol.js'

const WORKER = fileURLToPath(new URL('../fixtures/consume-worker.ts', import.meta.url))

/** Starts one consume-worker process per job, releases them together, and collects their reports. */
export function runWorkers(jobs: WorkerJob[]): Promise<WorkerReport[]> {
  return runWorkerScript<WorkerJob, WorkerReport>(WORKER, jobs)
}

/**
 * Starts `script` once per job (the job as JSON in argv), waits until each says it is ready,
 * sends them all "go" at once, and collects one report message from each.
 */
export async function runWorkerScript<Job, Report>(script: string, jobs: Job[]): Promise<Report[]> {
  const children: ChildProcess[] = jobs.map((job) =>
    fork(script, [JSON.stringify(job)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  )
  try {
    await Promise.all(children.map((c) => once(c, 'message')))
    const reports = children.map(
      (c) =>
        new Promise<Report>((resolve, reject) => {
          c.once('message', (m) => resolve(m as Report))
          c.once('exit', (code) => reject(new Error(`worker exited with ${code} before reporting`)))
        }),
    )
    for (const c of children) c.send('go')
    return await Promise.all(reports)
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill()
  }
}
