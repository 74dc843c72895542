/**
 * The board: what the gateway learnt of each deployment's provider account, shared by every
 * instance on the store — a cool-down after the provider refused (429, 529, 503), "full until the
 * reset" when the provider reported nothing left, and the provider's own limits when it reported
 * them. With Redis it lives in Redis on Redis's clock (board.lua); with the memory store, here.
 */
import { readFileSync } from 'node:fs'
import type { RedisClient } from '../../store/redis/connection.js'

/** One deployment's state on the board: milliseconds left of each mark (0: none) and reported limits. */
export interface BoardEntry {
  coolMs: number
  fullRequestsMs: number
  fullTokensMs: number
  /** The provider's reported limits per minute (undefined: not reported, or too long ago). */
  limitRequests: number | undefined
  limitTokens: number | undefined
}

/** What an answer (or a refusal) taught about a deployment; absent fields change nothing. */
export interface BoardUpdate {
  coolMs?: number
  fullRequestsMs?: number
  fullTokensMs?: number
  limitRequests?: number
  limitTokens?: number
}

export const EMPTY_ENTRY: BoardEntry = Object.freeze({
  coolMs: 0,
  fullRequestsMs: 0,
  fullTokensMs: 0,
  limitRequests: undefined,
  limitTokens: undefined,
})

/** How long a reported limit is believed without being reported again. */
export const LIMITS_TTL_MS = 10 * 60_000

export interface Board {
  read(names: readonly string[]): Promise<BoardEntry[]>
  write(name: string, update: BoardUpdate): Promise<void>
}

interface Stored {
  coolUntil: number
  fullRequestsUntil: number
  fullTokensUntil: number
  limitRequests: number | undefined
  limitTokens: number | undefined
  limitsUntil: number
}

/** The board in this process (the memory store: one instance). */
export class MemoryBoard implements Board {
  private readonly entries = new Map<string, Stored>()

  constructor(private readonly clock: () => number = Date.now) {}

  read(names: readonly string[]): Promise<BoardEntry[]> {
    const now = this.clock()
    return Promise.resolve(
      names.map((name) => {
        const s = this.entries.get(name)
        if (s === undefined) return EMPTY_ENTRY
        const live = s.limitsUntil > now
        return {
          coolMs: Math.max(0, s.coolUntil - now),
          fullRequestsMs: Math.max(0, s.fullRequestsUntil - now),
          fullTokensMs: Math.max(0, s.fullTokensUntil - now),
          limitRequests: live ? s.limitRequests : undefined,
          limitTokens: live ? s.limitTokens : undefined,
        }
      }),
    )
  }

  write(name: string, u: BoardUpdate): Promise<void> {
    const now = this.clock()
    const s = this.entries.get(name) ?? {
      coolUntil: 0,
      fullRequestsUntil: 0,
      fullTokensUntil: 0,
      limitRequests: undefined,
      limitTokens: undefined,
      limitsUntil: 0,
    }
    if (u.coolMs !== undefined) s.coolUntil = Math.max(s.coolUntil, now + u.coolMs)
    if (u.fullRequestsMs !== undefined)
      s.fullRequestsUntil = Math.max(s.fullRequestsUntil, now + u.fullRequestsMs)
    if (u.fullTokensMs !== undefined) s.fullTokensUntil = Math.max(s.fullTokensUntil, now + u.fullTokensMs)
    if (u.limitRequests !== undefined || u.limitTokens !== undefined) {
      if (u.limitRequests !== undefined) s.limitRequests = u.limitRequests
      if (u.limitTokens !== undefined) s.limitTokens = u.limitTokens
      s.limitsUntil = now + LIMITS_TTL_MS
    }
    this.entries.set(name, s)
    return Promise.resolve()
  }
}

const SCRIPT = readFileSync(new URL('./board.lua', import.meta.url), 'utf8')

/** Sends one command with whichever client the Redis store uses (ioredis or node-redis). */
function command(client: RedisClient, args: (string | number)[]): Promise<unknown> {
  if ('call' in client) return (client.call as (...a: unknown[]) => Promise<unknown>)(...args)
  return (client.sendCommand as (a: string[]) => Promise<unknown>)(args.map(String))
}

/** The board in Redis, shared by every instance on it (one EVAL per read or write). */
export class RedisBoard implements Board {
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
  ) {}

  private key(name: string): string {
    return `${this.prefix}deployment-board:{${name}}`
  }

  async read(names: readonly string[]): Promise<BoardEntry[]> {
    if (names.length === 0) return []
    const reply = (await command(this.client, [
      'EVAL',
      SCRIPT,
      names.length,
      ...names.map((n) => this.key(n)),
      'read',
    ])) as unknown[][]
    return reply.map((r) => {
      const [cool, fullR, fullT, limR, limT] = r.map(Number)
      return {
        coolMs: cool ?? 0,
        fullRequestsMs: fullR ?? 0,
        fullTokensMs: fullT ?? 0,
        limitRequests: limR ? limR : undefined,
        limitTokens: limT ? limT : undefined,
      }
    })
  }

  async write(name: string, u: BoardUpdate): Promise<void> {
    const hasLimits = u.limitRequests !== undefined || u.limitTokens !== undefined
    await command(this.client, [
      'EVAL',
      SCRIPT,
      1,
      this.key(name),
      'write',
      Math.round(u.coolMs ?? -1),
      Math.round(u.fullRequestsMs ?? -1),
      Math.round(u.fullTokensMs ?? -1),
      u.limitRequests ?? -1,
      u.limitTokens ?? -1,
      hasLimits ? LIMITS_TTL_MS : -1,
    ])
  }
}
