/** Abuse detectors: prompt loops, spend velocity, shared keys, slow scraping, credential stuffing. */
export * from './engine.js'
export * from './options.js'
export * from './sketch.js'
export * from './state.js'
export * from './steps.js'
