/**
 * A modal dialog on the native <dialog>: the browser keeps focus inside it and closes it on Escape;
 * focus goes back to what opened it.
 */
import type { ComponentChildren } from 'preact'
import { useId, useLayoutEffect, useRef, useState } from 'preact/hooks'
import { ApiError } from '../api'
import { ErrorNote } from './common'

export function Dialog(props: {
  title: string
  onClose: () => void
  children: ComponentChildren
  wide?: boolean
}) {
  const ref = useRef<HTMLDialogElement>(null)
  const titleId = useId()
  // A layout effect, not a passive one: Preact runs a passive effect's cleanup only after the next
  // paint, once the dialog is already gone from the page, so focus would sit on the body until then.
  useLayoutEffect(() => {
    const dialog = ref.current
    if (dialog === null) return
    const opener = document.activeElement as HTMLElement | null
    dialog.showModal()
    return () => {
      if (dialog.open) dialog.close()
      if (opener?.isConnected) opener.focus()
    }
  }, [])
  return (
    <dialog
      ref={ref}
      class={props.wide ? 'wide' : ''}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault()
        props.onClose()
      }}
    >
      <h2 id={titleId}>{props.title}</h2>
      {props.children}
    </dialog>
  )
}

/** A confirmation: what will happen, a button that does it, a way out. */
export function Confirm(props: {
  title: string
  action: string
  danger?: boolean
  children: ComponentChildren
  onConfirm: () => Promise<void>
  onClose: () => void
}) {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(undefined)
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <form
        method="dialog"
        onSubmit={async (e) => {
          e.preventDefault()
          setBusy(true)
          setError(undefined)
          try {
            await props.onConfirm()
          } catch (err) {
            setError(err)
            setBusy(false)
          }
        }}
      >
        {props.children}
        <ErrorNote error={error} />
        <div class="actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class={props.danger ? 'danger' : 'primary'} disabled={busy}>
            {props.action}
          </button>
        </div>
      </form>
    </Dialog>
  )
}

/** The field an API error names (`budgets.usd.limit`), to show the message beside it. */
export function errorFor(error: unknown, ...fields: string[]): string | undefined {
  if (!(error instanceof ApiError) || error.param === null) return undefined
  return fields.some(
    (f) => error.param === f || error.param!.startsWith(`${f}.`) || error.param!.startsWith(`${f}[`),
  )
    ? error.message
    : undefined
}
