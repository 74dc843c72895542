/** Small pieces every page uses: sections, stat tiles, bars, badges, notes, scrollable tables. */
import type { ComponentChildren } from 'preact'
import { useEffect, useRef } from 'preact/hooks'
import { ApiError } from '../api'
import { count } from '../format'

export function Section(props: {
  title: string
  id?: string
  actions?: ComponentChildren
  children: ComponentChildren
}) {
  const id = props.id ?? `s-${props.title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`
  return (
    <section class="card" aria-labelledby={id}>
      <div class="card-head">
        <h2 id={id}>{props.title}</h2>
        {props.actions}
      </div>
      {props.children}
    </section>
  )
}

export function Stat(props: { label: string; value: string; detail?: string; tone?: 'ok' | 'warn' | 'bad' }) {
  return (
    <div class={`stat ${props.tone ?? ''}`}>
      <div class="stat-label">{props.label}</div>
      <div class="stat-value">{props.value}</div>
      {props.detail !== undefined && <div class="stat-detail">{props.detail}</div>}
    </div>
  )
}

/**
 * A horizontal bar: how much of something is left (or used). Exposed as a meter with its numbers
 * in words, so a screen reader says "tokens: 7.2k of 10k left".
 */
export function Bar(props: {
  label: string
  value: number
  max: number
  text: string
  /** left: short is bad; used: full is bad; share: a part of a whole, neither good nor bad. */
  mode?: 'left' | 'used' | 'share'
}) {
  const share = props.max > 0 ? Math.min(1, Math.max(0, props.value / props.max)) : 0
  const mode = props.mode ?? 'left'
  const tone =
    mode === 'share'
      ? 'info'
      : mode === 'left'
        ? share < 0.1
          ? 'bad'
          : share < 0.2
            ? 'warn'
            : 'ok'
        : share >= 1
          ? 'bad'
          : share >= 0.8
            ? 'warn'
            : 'ok'
  return (
    <div class="bar-row">
      <div class="bar-label">
        <span>{props.label}</span>
        <span class="muted">{props.text}</span>
      </div>
      {/* biome-ignore lint/a11y/useSemanticElements: a styled bar; <meter> cannot be drawn alike in every browser. */}
      <div
        class={`bar ${tone}`}
        role="meter"
        aria-label={props.label}
        aria-valuemin={0}
        aria-valuemax={props.max}
        aria-valuenow={Math.max(0, Math.min(props.value, props.max))}
        aria-valuetext={props.text}
      >
        <div class="bar-fill" style={{ width: `${(share * 100).toFixed(1)}%` }} />
      </div>
    </div>
  )
}

export function Badge(props: {
  tone: 'ok' | 'warn' | 'bad' | 'info' | 'muted'
  children: ComponentChildren
}) {
  return <span class={`badge ${props.tone}`}>{props.children}</span>
}

/** An API failure in words (with the field it names), announced to screen readers. */
export function ErrorNote(props: { error: unknown; what?: string }) {
  if (props.error === undefined || props.error === null) return null
  const e = props.error as Error
  const message = e instanceof ApiError ? e.message : e.message || String(e)
  return (
    <p class="error" role="alert">
      {props.what ? `${props.what}: ` : ''}
      {message}
    </p>
  )
}

export function Loading(props: { what?: string }) {
  return (
    <p class="muted" aria-busy="true">
      Loading{props.what ? ` ${props.what}` : ''}…
    </p>
  )
}

/** A table that scrolls sideways on a narrow screen instead of widening the page. */
export function TableWrap(props: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard.
    <section class="table-wrap" aria-label={`${props.label} (table)`} tabIndex={0}>
      {props.children}
    </section>
  )
}

/** The page's heading, focused when the page opens (a screen reader then reads where it is). */
export function PageTitle(props: { children: ComponentChildren; text: string }) {
  const ref = useRef<HTMLHeadingElement>(null)
  useEffect(() => {
    document.title = `${props.text} · sluice`
    ref.current?.focus({ preventScroll: true })
  }, [props.text])
  return (
    <h1 ref={ref} tabIndex={-1}>
      {props.children}
    </h1>
  )
}

/** Two buttons acting as one switch (last hour / last day). */
export function Toggle<T extends string>(props: {
  label: string
  value: T
  options: { value: T; text: string }[]
  onChange: (value: T) => void
}) {
  return (
    // biome-ignore lint/a11y/useSemanticElements: a group of toggle buttons, not a form fieldset.
    <div class="toggle" role="group" aria-label={props.label}>
      {props.options.map((o) => (
        <button
          type="button"
          key={o.value}
          aria-pressed={o.value === props.value}
          onClick={() => props.onChange(o.value)}
        >
          {o.text}
        </button>
      ))}
    </div>
  )
}

/** Previous / Next over a list served `size` rows at a time from `offset`. */
export function Pager(props: {
  label: string
  offset: number
  size: number
  total: number
  onOffset: (offset: number) => void
}) {
  const { offset, size, total } = props
  return (
    <nav class="pager" aria-label={props.label}>
      <button
        type="button"
        disabled={offset === 0}
        onClick={() => props.onOffset(Math.max(0, offset - size))}
      >
        Previous
      </button>
      <span>
        {offset + 1}–{Math.min(offset + size, total)} of {count(total)}
      </span>
      <button type="button" disabled={offset + size >= total} onClick={() => props.onOffset(offset + size)}>
        Next
      </button>
    </nav>
  )
}
