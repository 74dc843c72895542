/**
 * A detector script call with binary arguments (loop fingerprints) through an ioredis client,
 * encoded in one step. Given a Buffer, ioredis encodes the whole command piece by piece (every
 * argument's length measured twice and written into the result with a call of its own): counted
 * alone, ~322k instructions for a script call of 16 checks, ~79k this way with the command made
 * with no arguments (docs/abuse.md, "What it costs"). Here the command is one latin1 string — the
 * Buffers' bytes as latin1 characters, the other arguments ASCII — made into bytes at once: the
 * same bytes ioredis would send. A command with an argument that is not ASCII (a subject in
 * another script) is encoded piece by piece, as ioredis does; clients this does not apply to are
 * left to ioredis (`binaryCaller`).
 */
import { Cluster, Command, Redis } from 'ioredis'
import type { IORedisClient } from '../redis/connection.js'

type Arg = string | number | Buffer

/** What this module uses of an ioredis Command (5 or 6): its name and arguments as sent. */
interface CommandLike {
  name: string
  args: (string | Buffer)[]
  toWritable(socket?: unknown): string | Buffer
}

interface IORedisInternals {
  options?: { keyPrefix?: string; showFriendlyErrorStack?: boolean; enableAutoPipelining?: boolean }
  sendCommand(command: CommandLike): Promise<unknown>
}

/** Any UTF-16 code unit above ASCII. */
const NOT_ASCII = /[\u0080-\uffff]/

/** The command as ioredis writes it (RESP), in one latin1 string made into bytes once. */
function toWritable(this: CommandLike): Buffer {
  const args = this.args
  let text = `*${args.length + 1}\r\n$${this.name.length}\r\n${this.name}\r\n`
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (typeof a === 'string') {
      // (A character outside ASCII takes more bytes than one: encoded piece by piece then.)
      if (NOT_ASCII.test(a)) return utf8Writable(this.name, args)
      text += `$${a.length}\r\n${a}\r\n`
    } else text += `$${a.length}\r\n${a.toString('latin1')}\r\n`
  }
  return Buffer.from(text, 'latin1')
}

const CRLF = Buffer.from('\r\n')

/** The same, strings in UTF-8: as ioredis writes a command with a Buffer among its arguments. */
function utf8Writable(name: string, args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length + 1}\r\n$${Buffer.byteLength(name)}\r\n${name}\r\n`)]
  for (const a of args) {
    if (typeof a === 'string') parts.push(Buffer.from(`$${Buffer.byteLength(a)}\r\n${a}\r\n`))
    else parts.push(Buffer.from(`$${a.length}\r\n`), a, CRLF)
  }
  return Buffer.concat(parts)
}

/**
 * A function that sends a command (name, then its arguments) through `client` as above, or
 * undefined where it does not apply: a client of another copy of ioredis than sluice's (its
 * Command class is not reachable from the client, and sluice's may differ from it), one that
 * pipelines commands automatically (they would no longer be). Replies, errors, key prefixes and
 * a cluster's routing are as `client.call`'s: the command is ioredis's own.
 */
export function binaryCaller(client: IORedisClient): ((args: Arg[]) => Promise<unknown>) | undefined {
  if (!(client instanceof Redis) && !(client instanceof Cluster)) return undefined
  const c = client as unknown as IORedisInternals
  if (c.options?.enableAutoPipelining === true) return undefined
  return (args) => {
    const o = c.options
    const options = {
      errorStack: o?.showFriendlyErrorStack ? new Error() : undefined,
      keyPrefix: o?.keyPrefix,
      replyEncoding: 'utf8' as const,
    }
    const rest = args.slice(1)
    let command: CommandLike
    if (o?.keyPrefix) command = new Command(String(args[0]), rest, options) as unknown as CommandLike
    else {
      // Made with no arguments, which are then set as ioredis would have them (numbers as
      // text): ioredis copies and checks each argument when given them (~5k instructions a
      // gateway call at 16 in flight), and with no key prefix nothing else is done with them.
      command = new Command(String(args[0]), [], options) as unknown as CommandLike
      for (let i = 0; i < rest.length; i++) if (typeof rest[i] === 'number') rest[i] = String(rest[i])
      command.args = rest as (string | Buffer)[]
    }
    command.toWritable = toWritable
    return c.sendCommand(command)
  }
}
