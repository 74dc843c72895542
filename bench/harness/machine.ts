import { cpus, loadavg, release, totalmem, type } from 'node:os'

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  os: string
  node: string
  redis?: string
  /** 1-minute load average when the run started and ended: a busy machine makes every figure noisy. */
  loadAtStart: number
  loadAtEnd?: number
}

export function describeMachine(): Machine {
  const list = cpus()
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.version,
    loadAtStart: loadavg()[0]!,
  }
}

export function machineLine(m: Machine): string {
  const load = `load ${m.loadAtStart.toFixed(2)}${m.loadAtEnd === undefined ? '' : ` → ${m.loadAtEnd.toFixed(2)}`}`
  const redis = m.redis ? `, redis-server ${m.redis}` : ''
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}${redis}, ${load}`
}

/** The 1-, 5- and 15-minute load averages, as a line's figures ("0.92 1.57 3.21"). */
export function loadAverages(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')
}
