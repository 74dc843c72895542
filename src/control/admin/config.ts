import { z } from 'zod'
import type { AdminTokenOptions } from './auth.js'

/**
 * The `admin:` section of sluice.yaml (for the gateway's config schema to include):
 * `admin: { tokenHash: <64 hex digits>, port?: 8788, host?: 127.0.0.1 }`. Only the hash of the token
 * is written in the file; the token itself may come from SLUICE_ADMIN_TOKEN instead.
 */
export const adminConfigSchema = z.strictObject({
  /** SHA-256 of the admin token, 64 hex digits (`generateAdminToken()` prints both). */
  tokenHash: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits (the SHA-256 of the admin token)')
    .transform((h) => h.toLowerCase())
    .optional(),
  /** Serve the admin API on this port of its own instead of the gateway's. */
  port: z.number().int().min(0).max(65_535).optional(),
  /** The address of that port (default 127.0.0.1). */
  host: z.string().min(1).optional(),
})
export type AdminConfig = z.output<typeof adminConfigSchema>

/**
 * Where the admin token comes from: `SLUICE_ADMIN_TOKEN` (the token itself) wins over the config's
 * `admin.tokenHash`; neither → undefined, and the admin API stays off.
 */
export function adminAuthFrom(
  env: Record<string, string | undefined>,
  config: AdminConfig | undefined,
): AdminTokenOptions | undefined {
  const token = env.SLUICE_ADMIN_TOKEN
  if (token !== undefined && token !== '') return { token }
  if (config?.tokenHash !== undefined) return { tokenHash: config.tokenHash }
  return undefined
}
