/** Waits `ms` milliseconds (the one pause the tests use). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
