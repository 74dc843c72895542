/**
 * `npx tsx bench/attacks.ts`: the gateway's request path under the attacks of docs/security.md,
 * each against a gateway in its own process (memory store, built-in mock upstream):
 *
 *   big-body  time to answer a 10 MB one-word body (anonymous, and with a service-tier key whose
 *             token bucket holds it), on a warm gateway
 *   healthz   /healthz latency from a separate prober while 20 such bodies a second arrive
 *   stalled   the gateway's memory while 250 uploads send headers and 4 MB of a 9 MB body, then stall
 *
 * Options: --only <id>, --seconds N (load duration, default 10), --root <repo> (run the gateway from
 * another checkout, e.g. one before the fixes), --config '<json>' (merged into the gateway config),
 * --timeout N (seconds to wait for one answer, default 60). ATTACKS_DEBUG=1 lists the slow probes.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { Pool } from 'undici'
import { percentiles } from './harness/latency.js'
import { describeMachine, machineLine } from './harness/machine.js'
import { progress } from './harness/progress.js'

interface Options {
  only: string | undefined
  seconds: number
  root: string | undefined
  config: Record<string, unknown>
  timeoutMs: number
}

function parse(argv: string[]): Options {
  const options: Options = { only: undefined, seconds: 10, root: undefined, config: {}, timeoutMs: 60_000 }
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1]
    switch (argv[i]) {
      case '--only':
        options.only = value
        break
      case '--seconds':
        options.seconds = Number(value)
        break
      case '--root':
        options.root = value
        break
      case '--config':
        options.config = JSON.parse(value ?? '{}') as Record<string, unknown>
        break
      case '--timeout':
        options.timeoutMs = Number(value) * 1000
        break
      default:
        throw new Error(`unknown option ${argv[i]}`)
    }
    i++
  }
  return options
}

interface Gateway {
  url: string
  demoKey: string
  child: ChildProcess
  stop(): Promise<void>
}

interface Ready {
  url: string
  demoKey: string
}

async function startChild(script: string, config: unknown): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = fork(new URL(script, import.meta.url), [JSON.stringify(config)], {
    execArgv: [...process.execArgv, '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const [ready] = (await once(child, 'message')) as [Ready]
  return { child, ready }
}

async function stopChild(child: ChildProcess): Promise<void> {
  child.send({ type: 'stop' })
  const exited = once(child, 'exit')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}

async function startGateway(options: Options): Promise<Gateway> {
  const mock = await startChild('./workers/attack-gateway.ts', { root: options.root, role: 'mock' })
  const { child, ready } = await startChild('./workers/attack-gateway.ts', {
    root: options.root,
    upstreamUrl: mock.ready.url,
    config: options.config,
  })
  return {
    url: ready.url,
    demoKey: ready.demoKey,
    child,
    async stop() {
      await stopChild(child)
      await stopChild(mock.child)
    },
  }
}

/** Resident memory of a process in MB, read by the kernel (works even while its event loop is stuck). */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN) / 1024
}

/** A chat request whose one message is `length` letters drawn from a few (so no cache helps). */
function oneWordBody(length: number, seed: number): Buffer {
  const head = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"'
  const tail = '"}],"max_tokens":16}'
  const buffer = Buffer.alloc(head.length + length + tail.length)
  buffer.write(head)
  let x = seed
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    buffer[head.length + i] = 97 + (x % 26)
  }
  buffer.write(tail, head.length + length)
  return buffer
}

async function timed(pool: Pool, body: Buffer, key: string | undefined, timeoutMs: number) {
  const start = performance.now()
  try {
    const res = await pool.request({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', ...(key && { authorization: `Bearer ${key}` }) },
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      // A gateway that stops reading never lets the body finish, and headersTimeout starts after it.
      signal: AbortSignal.timeout(timeoutMs),
    })
    await res.body.text()
    return { status: String(res.statusCode), ms: performance.now() - start }
  } catch (error) {
    const timedOut = (error as Error).name === 'TimeoutError'
    return {
      status: timedOut ? 'no answer' : `error: ${(error as Error).message}`,
      ms: performance.now() - start,
    }
  }
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1))

const ROOMY_SERVICE = {
  service: {
    limits: { tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 1_000_000_000, per: '1h' } },
  },
}

async function bigBody(options: Options): Promise<string> {
  const rows: string[] = [
    '| body | client | answers (status × time) | median ms | max ms |',
    '|---|---|---|---|---|',
  ]
  for (const [label, length, runs] of [
    ['160 KB one word', 160_000, 3],
    ['10 MB one word', 10_000_000, 5],
  ] as const) {
    for (const client of ['anonymous', 'service key'] as const) {
      // A service tier whose token bucket holds any of these prompts, so that each is served.
      const gateway = await startGateway({ ...options, config: { tiers: ROOMY_SERVICE, ...options.config } })
      const pool = new Pool(gateway.url, { connections: 1 })
      const key = client === 'anonymous' ? undefined : gateway.demoKey
      // Warm: the first call loads the tokenizer's vocabulary in the gateway and the mock.
      await timed(pool, oneWordBody(100, 0), key, options.timeoutMs)
      const results: Array<{ status: string; ms: number }> = []
      for (let i = 0; i < runs; i++) {
        progress(`big-body: ${label}, ${client}, ${i + 1}/${runs}`)
        results.push(await timed(pool, oneWordBody(length, i + 1), key, options.timeoutMs))
      }
      await pool.destroy()
      await gateway.stop()
      const times = results.map((r) => r.ms).sort((a, b) => a - b)
      const statuses = results.map((r) => `${r.status} ${fmt(r.ms)}`).join(', ')
      rows.push(
        `| ${label} | ${client} | ${statuses} | ${fmt(times[times.length >> 1]!)} | ${fmt(times[times.length - 1]!)} |`,
      )
    }
  }
  return rows.join('\n')
}

async function healthz(options: Options): Promise<string> {
  const rows = [
    '| load | probes | p50 ms | p99 ms | max ms | p99 ms, second half | probes > 50 ms | last one sent at | timed out | attack answers |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ]
  const bodies = Array.from({ length: 4 }, (_, i) => oneWordBody(10_000_000, i + 7))
  for (const phase of ['idle', '20 × 10 MB/s anonymous', '20 × 10 MB/s service key'] as const) {
    const gateway = await startGateway(options)
    const { child: prober } = await startChild('./workers/healthz-probe.ts', {
      url: gateway.url,
      intervalMs: 10,
      timeoutMs: options.timeoutMs,
    })
    const statuses = new Map<string, number>()
    const attacks: Array<Promise<void>> = []
    progress(`healthz: ${phase} for ${options.seconds} s`)
    const started = Date.now()
    const pool = new Pool(gateway.url, { connections: 64 })
    if (phase !== 'idle') {
      const key = phase.endsWith('key') ? gateway.demoKey : undefined
      const deadline = performance.now() + options.seconds * 1000
      let i = 0
      while (performance.now() < deadline) {
        const body = bodies[i++ % bodies.length]!
        attacks.push(
          timed(pool, body, key, options.timeoutMs).then((r) => {
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
          }),
        )
        await new Promise((r) => setTimeout(r, 50))
      }
    } else {
      await new Promise((r) => setTimeout(r, options.seconds * 1000))
    }
    prober.send({ type: 'stop' })
    const [result] = (await once(prober, 'message')) as [
      { latencies: number[]; sentAt: number[]; timedOut: number },
    ]
    await Promise.all(attacks)
    await pool.destroy()
    await gateway.stop()
    const p = percentiles(Float64Array.from(result.latencies))
    // The second half of the window: the steady state, once repeat offenders are blocked.
    const half = started + (options.seconds * 1000) / 2
    const steady = percentiles(
      Float64Array.from(result.latencies.filter((_, i) => result.sentAt[i]! >= half)),
    )
    const max = Math.max(...result.latencies)
    const slow = result.latencies
      .map((l, i) => [result.sentAt[i]! - started, l] as const)
      .filter(([, l]) => l > 50)
    if (process.env.ATTACKS_DEBUG) {
      progress(
        `slow probes (sent at ms, latency ms): ${slow.map(([t, l]) => `${t}:${l.toFixed(0)}`).join(' ')}`,
      )
    }
    const lastSlow = slow.length === 0 ? '—' : `${(Math.max(...slow.map(([t]) => t)) / 1000).toFixed(1)} s`
    const answers = [...statuses].map(([s, n]) => `${n} × ${s}`).join(', ') || '—'
    rows.push(
      `| ${phase} | ${p.samples} | ${fmt(p.p50Ms)} | ${fmt(p.p99Ms)} | ${fmt(max)} | ${fmt(steady.p99Ms)} | ${slow.length} | ${lastSlow} | ${result.timedOut} | ${answers} |`,
    )
  }
  return rows.join('\n')
}

async function stalled(options: Options): Promise<string> {
  const gateway = await startGateway(options)
  const pid = gateway.child.pid!
  // Warm up: one call, so that the baseline includes what any served call loads.
  await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
  }).then((r) => r.arrayBuffer())
  const baseline = rssMb(pid)
  const url = new URL(gateway.url)
  const part = Buffer.alloc(4 * 1024 * 1024, 'a')
  const answers = new Map<string, number>()
  let closed = 0
  const sockets = Array.from({ length: 250 }, () => {
    const socket = connect(Number(url.port), url.hostname)
    let head = ''
    socket.on('connect', () => {
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: 9000000\r\n\r\n`,
      )
      socket.write(part)
    })
    socket.on('data', (chunk) => {
      if (head === '') {
        head = chunk.toString('latin1', 0, 12)
        const status = head.slice(9, 12)
        answers.set(status, (answers.get(status) ?? 0) + 1)
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => closed++)
    return socket
  })
  progress(`stalled: 250 uploads of 4 MB of 9 MB, then silence, for ${options.seconds} s`)
  let peak = baseline
  const marks: string[] = []
  const start = performance.now()
  const markAt = new Set([1, 5, 10, 15, 20, 30, 60].filter((s) => s <= options.seconds))
  for (let t = 0; t < options.seconds * 5; t++) {
    await new Promise((r) => setTimeout(r, 200))
    const rss = rssMb(pid)
    peak = Math.max(peak, rss)
    const second = Math.round((performance.now() - start) / 1000)
    if (markAt.delete(second)) marks.push(`${second} s: ${rss.toFixed(0)} MB, ${closed} closed`)
  }
  const end = rssMb(pid)
  const closedByGateway = closed
  for (const s of sockets) s.destroy()
  gateway.child.send({ type: 'memory' })
  const [{ usage }] = (await once(gateway.child, 'message')) as [{ usage: NodeJS.MemoryUsage }]
  const held = (usage.heapUsed + usage.external) / 1024 / 1024
  await gateway.stop()
  const statuses = [...answers].map(([s, n]) => `${n} × ${s}`).join(', ') || 'none'
  return [
    '| baseline RSS | peak RSS | RSS at end | heap + external after a GC at end | connections the gateway closed | answers | over time |',
    '|---|---|---|---|---|---|---|',
    `| ${baseline.toFixed(0)} MB | ${peak.toFixed(0)} MB | ${end.toFixed(0)} MB | ${held.toFixed(0)} MB | ${closedByGateway} of 250 | ${statuses} | ${marks.join('; ')} |`,
  ].join('\n')
}

const options = parse(process.argv.slice(2))
const machine = describeMachine()
const scenarios: Record<string, (o: Options) => Promise<string>> = { 'big-body': bigBody, healthz, stalled }
const out: string[] = [
  `Command: npx tsx bench/attacks.ts ${process.argv.slice(2).join(' ')}`.trimEnd(),
  `Machine: ${machineLine(machine)}`,
]
for (const [id, run] of Object.entries(scenarios)) {
  if (options.only !== undefined && options.only !== id) continue
  out.push('', `### ${id}`, '', await run(options))
}
process.stdout.write(`${out.join('\n')}\n`)
