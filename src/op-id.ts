import { randomBytes } from 'node:crypto'

/** This process's tag: ids from different processes sharing a store never collide. */
const OP_TAG = randomBytes(6).toString('base64url')
let opCounter = 0

/** @internal A fresh op id (the name of the log entries and leases an op writes). */
export function nextOpId(): string {
  opCounter = (opCounter + 1) % Number.MAX_SAFE_INTEGER
  return `${OP_TAG}.${opCounter.toString(36)}`
}
