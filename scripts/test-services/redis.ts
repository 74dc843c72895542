// Redis for the tests: the helpers start their own redis-server processes (and redis-cli joins
// three of them into a cluster), so both programs must be on PATH. REDIS_URL, when set, must answer.
import { type Probe, unusable } from './probe.js'
import { firstLine, forPerson, run, which } from './system.js'

export async function probeRedis(env: NodeJS.ProcessEnv): Promise<Probe> {
  const server = which('redis-server', env)
  const cli = which('redis-cli', env)
  if (!server || !cli) {
    const absent = [server ? undefined : 'redis-server', cli ? undefined : 'redis-cli'].filter(Boolean)
    return {
      state: 'missing',
      problem: `${absent.join(' and ')} ${absent.length > 1 ? 'are' : 'is'} not on PATH`,
    }
  }
  const version = await run([server, '--version'], { env, timeoutMs: 30_000 })
  const v = /v=(\S+)/.exec(version.stdout)?.[1]
  if (version.code !== 0 || !v) {
    return unusable(
      `${server} --version failed: ${firstLine(version)}`,
      `reinstall it: ${forPerson(['apt-get', 'install', '--reinstall', '-y', 'redis-server'])}`,
    )
  }
  const external = env.REDIS_URL
  if (external) {
    const answer = await ping(external)
    if (answer) {
      return unusable(
        `REDIS_URL (${where(external)}) does not answer PING (${answer})`,
        'start that server, or unset REDIS_URL to let the tests start their own',
      )
    }
    return { state: 'ready', summary: `REDIS_URL ${where(external)} answers; redis-server ${v} on PATH` }
  }
  return { state: 'ready', summary: `redis-server ${v} and redis-cli on PATH (the tests start their own)` }
}

/** host:port of a Redis URL, never its password. */
function where(url: string): string {
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port || 6379}`
  } catch {
    return 'an unparsable URL'
  }
}

/** undefined when the server answers PONG, else why not. */
async function ping(url: string): Promise<string | undefined> {
  const { Redis } = await import('ioredis')
  let client: InstanceType<typeof Redis>
  try {
    client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: 5_000,
      commandTimeout: 5_000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    })
  } catch (error) {
    return (error as Error).message
  }
  // The first connection error says why (refused, unknown host); the rejection only says "closed".
  let cause: string | undefined
  client.on('error', (error: Error) => {
    cause ??= error.message
  })
  try {
    await client.connect()
    const pong = await client.ping()
    return pong === 'PONG' ? undefined : `answered ${pong}`
  } catch (error) {
    return cause ?? (error as Error).message
  } finally {
    client.disconnect()
  }
}
