/** A connection's peer address, read once per connection rather than once per request. */
import type { Socket } from 'node:net'

/**
 * Each connection's peer address. Node's `remoteAddress` getter costs ~450 instructions a read
 * (it reads the socket's `_handle`, a getter, twice through a megamorphic lookup), and a
 * keep-alive connection carries many requests from the same peer.
 */
const addresses = new WeakMap<Socket, string>()

export function remoteAddressOf(socket: Socket): string | undefined {
  let address = addresses.get(socket)
  if (address === undefined) {
    address = socket.remoteAddress
    if (address !== undefined) addresses.set(socket, address)
  }
  return address
}
