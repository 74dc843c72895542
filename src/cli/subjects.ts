/** `sluice inspect` and `sluice unblock`: a subject's buckets in the shared store, resolved as the gateway counts them. */
import { escapeControls, formatMs, inspectTable, nextCallLines } from '../gateway/format.js'
import { inspectSubject } from '../gateway/inspect.js'
import { type ResolvedSubject, resolveSubject, SubjectError } from '../gateway/subjects.js'
import type { Sluice } from '../http/index.js'
import { type CliIo, configFrom, UsageError } from './io.js'
import { sharedState } from './state.js'

const SUBJECT = /^(ip|user|key):\S+$/

function subjectArg(positionals: string[], command: string): string {
  const subject = positionals[1]
  if (subject === undefined)
    throw new UsageError(`${command} needs a subject, e.g. sluice ${command} key:ci-bot`)
  if (!SUBJECT.test(subject)) {
    throw new UsageError(`subject must look like key:<id>, user:<id> or ip:<address>, got "${subject}"`)
  }
  return subject
}

/** Resolves the subject; an unknown one is reported and ends the command with exit code 1. */
async function resolved(
  sluice: Sluice,
  config: Parameters<typeof resolveSubject>[1],
  subject: string,
  io: CliIo,
) {
  try {
    return await resolveSubject(sluice, config, subject)
  } catch (error) {
    if (error instanceof SubjectError) {
      io.err(escapeControls(`${subject}: ${error.message}`))
      return undefined
    }
    throw error
  }
}

function printNotes(subject: ResolvedSubject, io: CliIo): void {
  for (const note of subject.notes) io.out(escapeControls(note))
}

export async function inspectCommand(
  values: Record<string, unknown>,
  positionals: string[],
  io: CliIo,
): Promise<number> {
  const input = subjectArg(positionals, 'inspect')
  const { config } = configFrom(values.config as string | undefined, io)
  const state = await sharedState(config)
  try {
    const subject = await resolved(state.sluice, config, input, io)
    if (subject === undefined) return 1
    if (subject.targets.length === 0) {
      io.out(escapeControls(`no tier counts ${input}`))
      return 0
    }
    const states = await inspectSubject(subject)
    if (values.json) {
      io.out(JSON.stringify(states, null, 2))
      return 0
    }
    printNotes(subject, io)
    io.out(inspectTable(states))
    for (const line of nextCallLines(states)) io.out(line)
    return 0
  } finally {
    await state.close()
  }
}

export async function unblockCommand(
  values: Record<string, unknown>,
  positionals: string[],
  io: CliIo,
): Promise<number> {
  const input = subjectArg(positionals, 'unblock')
  const { config } = configFrom(values.config as string | undefined, io)
  const state = await sharedState(config, { invalidate: true })
  try {
    const subject = await resolved(state.sluice, config, input, io)
    if (subject === undefined) return 1
    if (subject.targets.length === 0) {
      io.out(escapeControls(`no tier counts ${input}: nothing to unblock`))
      return 0
    }
    printNotes(subject, io)
    for (const { tier, subject: counted, limiter } of subject.targets) {
      const before = await limiter.peek(counted, { requests: 0, concurrent: 0 })
      await limiter.unblock(counted)
      io.out(
        escapeControls(
          before.blocked
            ? `unblocked ${counted} in tier ${tier} (the block had ${formatMs(before.retryAfterMs)} to go; its strikes are forgotten too)`
            : `${counted} was not blocked in tier ${tier}; its strikes are forgotten`,
        ),
      )
    }
    return 0
  } finally {
    await state.close()
  }
}
