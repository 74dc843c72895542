/**
 * The outcome of `run` as a promise, whether it returns a value, returns a promise or throws.
 * For APIs that promise a Promise over steps that may answer at once (a MemoryStore decides
 * synchronously): a throw becomes a rejection, never an exception out of an async-looking call.
 */
export function promised<T>(run: () => T | Promise<T>): Promise<T> {
  try {
    const value = run()
    return value instanceof Promise ? value : Promise.resolve(value)
  } catch (error) {
    return Promise.reject(error)
  }
}
