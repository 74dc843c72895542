/** See passthrough.mjs. */
export function startPassThrough(upstreamUrl: string): Promise<{ url: string; close(): Promise<void> }>
