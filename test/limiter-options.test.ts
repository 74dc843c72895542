import { describe, expect, it } from 'vitest'
import {
  concurrency,
  fixedWindow,
  Limiter,
  MemoryStore,
  RedisStore,
  SluiceInputError,
  slidingLog,
  slidingWindow,
  tokenBucket,
} from '../src/index.js'

const store = new MemoryStore()

describe('bad options are refused when created, naming the bad value', () => {
  const cases: [string, () => unknown, RegExp][] = [
    ['zero capacity', () => tokenBucket({ capacity: 0, refillPerSecond: 1 }), /capacity.*0/],
    ['negative refill', () => tokenBucket({ capacity: 5, refillPerSecond: -1 }), /refillPerSecond.*-1/],
    ['NaN refill', () => tokenBucket({ capacity: 5, refillPerSecond: Number.NaN }), /refillPerSecond.*NaN/],
    [
      'infinite capacity',
      () => tokenBucket({ capacity: Number.POSITIVE_INFINITY, refillPerSecond: 1 }),
      /capacity/,
    ],
    ['zero window', () => fixedWindow({ limit: 5, windowMs: 0 }), /windowMs.*0/],
    ['fractional window', () => slidingWindow({ limit: 5, windowMs: 1.5 }), /windowMs.*1.5/],
    ['negative limit', () => slidingLog({ limit: -3, windowMs: 1000 }), /limit.*-3/],
    ['zero concurrency', () => concurrency({ limit: 0 }), /limit.*0/],
    ['bad unit', () => tokenBucket({ capacity: 1, refillPerSecond: 1, unit: '' }), /unit/],
    [
      'no store',
      () => new Limiter({ policy: 'p', limits: { a: fixedWindow({ limit: 1, windowMs: 1 }) } } as never),
      /store/,
    ],
    [
      'bad policy',
      () => new Limiter({ store, policy: 'a b', limits: { a: fixedWindow({ limit: 1, windowMs: 1 }) } }),
      /policy.*a b/,
    ],
    ['no limits', () => new Limiter({ store, policy: 'p', limits: {} }), /limits/],
    [
      'bad limit name',
      () => new Limiter({ store, policy: 'p', limits: { 'a:b': fixedWindow({ limit: 1, windowMs: 1 }) } }),
      /a:b/,
    ],
    [
      'hand-made limit with a bad value',
      () =>
        new Limiter({
          store,
          policy: 'p',
          limits: { x: { kind: 'tokenBucket', capacity: -1, refillPerSecond: 1 } as never },
        }),
      /limits\.x.*capacity.*-1/,
    ],
    [
      'unknown kind',
      () => new Limiter({ store, policy: 'p', limits: { x: { kind: 'leaky' } as never } }),
      /leaky/,
    ],
    [
      'alertAt above 1',
      () =>
        new Limiter({
          store,
          policy: 'p',
          limits: { a: fixedWindow({ limit: 1, windowMs: 1 }) },
          alertAt: 80,
        }),
      /alertAt.*80/,
    ],
    [
      'empty block durations',
      () =>
        new Limiter({
          store,
          policy: 'p',
          limits: { a: fixedWindow({ limit: 1, windowMs: 1 }) },
          block: { durationsMs: [] },
        }),
      /durationsMs/,
    ],
    [
      'a block option under a name the limiter does not know',
      () =>
        new Limiter({
          store,
          policy: 'p',
          limits: { a: fixedWindow({ limit: 1, windowMs: 1 }) },
          block: { after: 1, within: '1m' } as never,
        }),
      /block\.within is not an option/,
    ],
    ['RedisStore without client', () => new RedisStore({} as never), /RedisStore/],
    ['RedisStore with a bad url', () => new RedisStore({ url: 'http://x' }), /url.*http:\/\/x/],
  ]
  for (const [name, make, message] of cases) {
    it(name, () => {
      expect(make).toThrow(SluiceInputError)
      expect(make).toThrow(message)
    })
  }
})
