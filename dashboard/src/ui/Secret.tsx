/**
 * A key's secret, shown the one time the API returns it (creation, rotation), with a copy button.
 * It lives in this component's props only: once the dialog closes it is gone from the page.
 */
import { useId, useRef, useState } from 'preact/hooks'
import { Dialog } from './Dialog'

export function SecretDialog(props: { title: string; secret: string; note?: string; onClose: () => void }) {
  const input = useRef<HTMLInputElement>(null)
  const [copied, setCopied] = useState<'yes' | 'no' | undefined>(undefined)
  const id = useId()
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.secret)
      setCopied('yes')
    } catch {
      // No clipboard access (an insecure origin, a denied permission): select it for Ctrl+C.
      input.current?.select()
      setCopied('no')
    }
  }
  return (
    <Dialog title={props.title} onClose={props.onClose} wide>
      <p class="warning">
        <strong>This is the only time this key is shown.</strong> Copy it now and keep it in a secret store:
        the server keeps only its hash.
      </p>
      {props.note && <p>{props.note}</p>}
      <label for={id}>API key</label>
      <div class="secret-row">
        <input
          id={id}
          ref={input}
          class="mono"
          readOnly
          value={props.secret}
          spellcheck={false}
          autocomplete="off"
          onFocus={(e) => e.currentTarget.select()}
        />
        <button type="button" class="primary" onClick={copy}>
          Copy
        </button>
      </div>
      <p class="muted" aria-live="polite">
        {copied === 'yes'
          ? 'Copied to the clipboard.'
          : copied === 'no'
            ? 'Selected: press Ctrl+C to copy.'
            : ''}
      </p>
      <div class="actions">
        <button type="button" onClick={props.onClose}>
          I have stored it
        </button>
      </div>
    </Dialog>
  )
}
