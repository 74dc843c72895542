/**
 * gpt-tokenizer's byte-pair merge is quadratic in the length of one pre-tokenizer piece: a single
 * 160 KB "word" took ~11 s. A piece never spans a change between whitespace and non-whitespace, so
 * cutting every run of either kind after MAX_RUN characters bounds each piece, and counting becomes
 * linear in the text. Text without such runs is counted whole, exactly as before.
 */
import { isSpace } from '../core/whitespace.js'

/** Longest run of whitespace, or of anything else, that the tokenizer sees in one piece. */
export const MAX_RUN = 128

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff
}

/**
 * Whether a run of whitespace, or of anything else, is longer than `maxRun` characters. Such a run
 * covers a whole stride of (maxRun + 1) / 2 characters from some multiple of the stride, so only the
 * runs at those positions are measured: a prompt of ordinary words is settled by looking at a few
 * characters in every stride (~15x fewer than reading all of them, which cost ~8 % of counting a
 * 4,000-token prompt), and the cutting loop below runs only for texts that need it.
 */
function hasRunLongerThan(text: string, maxRun: number): boolean {
  const stride = Math.max(1, (maxRun + 1) >> 1)
  const length = text.length
  for (let at = 0; at + stride <= length; at += stride) {
    const space = isSpace(text.charCodeAt(at))
    let end = at + 1
    while (end < length && isSpace(text.charCodeAt(end)) === space) end++
    if (end - at < stride) continue
    let start = at
    while (start > 0 && isSpace(text.charCodeAt(start - 1)) === space) start--
    if (end - start > maxRun) return true
  }
  return false
}

/**
 * Counts `text` with `count`, cut inside runs longer than `maxRun` characters (never inside a
 * surrogate pair). A cut adds a token boundary, so a text with long runs counts a few tokens more
 * than the unbounded tokenizer would say: fine for an estimate that is settled against the
 * upstream's usage, and it keeps the time linear whatever the text.
 */
export function countInRuns(count: (text: string) => number, text: string, maxRun = MAX_RUN): number {
  const length = text.length
  if (length <= maxRun || !hasRunLongerThan(text, maxRun)) return count(text)
  let total = 0
  let segmentStart = 0
  let runStart = 0
  let runSpace = isSpace(text.charCodeAt(0))
  for (let i = 1; i < length; i++) {
    const space = isSpace(text.charCodeAt(i))
    if (space !== runSpace) {
      runSpace = space
      runStart = i
    } else if (i - runStart >= maxRun) {
      const cut = isLowSurrogate(text.charCodeAt(i)) ? i + 1 : i
      if (cut >= length) break
      total += count(text.slice(segmentStart, cut))
      segmentStart = cut
      runStart = cut
      i = cut
    }
  }
  return total + count(segmentStart === 0 ? text : text.slice(segmentStart))
}
