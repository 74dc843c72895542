/**
 * The gateway's side of the abuse detectors: one detector store for the process (it outlives
 * reloads: Redis when the limits are in Redis, else memory) and detections into the admin events
 * feed and the audit log.
 */
import { accessSync, constants } from 'node:fs'
import type { Logger } from 'pino'
import { insertAudit } from '../control/audit.js'
import { SluiceInputError } from '../core/errors.js'
import { type CountryLookup, openGeoIp } from '../http/geoip.js'
import type { DetectionEvent, Sluice } from '../http/index.js'
import { detectorStoreFor as storeFor } from '../store/detectors/for-store.js'
import type { DetectorStore } from '../store/detectors/types.js'
import { ConfigError } from './config/load.js'
import type { GatewayConfig } from './config/schema.js'
import type { GatewayControl } from './control-plane.js'
import type { GatewayStore } from './store.js'

/** The detector store of a gateway, or undefined when no detector is configured. */
export function detectorStoreFor(config: GatewayConfig, stores: GatewayStore): DetectorStore | undefined {
  if (config.detectors === undefined) return undefined
  // Behind an outage guard the limits' RedisStore is `stores.redis`, not the store itself.
  return storeFor(stores.redis ?? stores.store, config.prefix)
}

/** The countries of `geoip.database`, read once at start; a file that cannot be used is a ConfigError naming it. */
export function openGeoIpFor(config: GatewayConfig): CountryLookup | undefined {
  if (config.geoip === undefined) return undefined
  try {
    return openGeoIp(config.geoip.database, 'geoip.database')
  } catch (error) {
    if (error instanceof SluiceInputError) throw new ConfigError([error.message])
    throw error
  }
}

/**
 * For `check-config` and reloads: whether `geoip.database` can be read, without reading it; and a
 * stand-in lookup to build the HTTP core with.
 */
export function checkGeoIp(config: GatewayConfig): CountryLookup | undefined {
  if (config.geoip === undefined) return undefined
  const path = config.geoip.database
  try {
    accessSync(path, constants.R_OK)
  } catch (error) {
    throw new ConfigError([`geoip.database: cannot read ${path} (${(error as Error).message})`])
  }
  return { country: () => undefined }
}

/** A subject's identity fields as the detectors read them. */
export interface Who {
  readonly subject: string
  readonly tier: string
  readonly kind: 'key' | 'user' | 'ip'
  readonly keyId: string | undefined
}

/** The last whoOf() answer (most calls come from few subjects): not built again for the same one. */
let lastWho: Who | undefined

/** The subject's identity fields as the accounting knows them (subject and tier). */
export function whoOf(subject: string, tier: string): Who {
  const last = lastWho
  if (last !== undefined && last.subject === subject && last.tier === tier) return last
  const kind = subject.startsWith('key:') ? 'key' : subject.startsWith('user:') ? 'user' : 'ip'
  lastWho = Object.freeze({ subject, tier, kind, keyId: kind === 'key' ? subject.slice(4) : undefined })
  return lastWho
}

/** Detections into the events feed and the audit log (one row each, actor "sluice"); returns the disconnect. */
export function connectDetections(plane: GatewayControl, sluice: Sluice, logger: Logger): () => void {
  const onDetection = (e: DetectionEvent) => {
    try {
      plane.events.publish({
        type: 'detection',
        severity: e.level === 'alert' || e.shadow ? 'warning' : 'critical',
        subject: e.subject,
        tier: e.tier,
        message: e.message,
        data: {
          detector: e.detector,
          level: e.level,
          shadow: e.shadow,
          value: e.value,
          threshold: e.threshold,
          ...(e.addresses !== undefined && { addresses: e.addresses.slice(0, 50) }),
          ...(e.countries !== undefined && { countries: e.countries }),
        },
        time: Date.parse(e.at),
      })
    } catch (error) {
      logger.warn({ err: error }, 'a detection could not be published to the events feed')
    }
    void insertAudit(
      plane.control.database.db,
      {
        actor: 'sluice',
        action: 'detection.raise',
        targetKind: 'subject',
        targetId: e.subject,
        before: null,
        after: {
          detector: e.detector,
          level: e.level,
          shadow: e.shadow,
          value: e.value,
          threshold: e.threshold,
        },
      },
      Date.parse(e.at),
    ).catch((error: unknown) =>
      logger.warn({ err: error }, 'a detection could not be written to the audit log'),
    )
  }
  sluice.events.on('detection', onDetection)
  return () => sluice.events.off('detection', onDetection)
}
