import { storeContract } from './helpers/store-contract.js'
import { redisClientHarness } from './helpers/store-harness.js'

// ioredis 5, a copy other than sluice's own (ioredis 6): recognised by its methods.
storeContract(redisClientHarness('ioredis 5'))
