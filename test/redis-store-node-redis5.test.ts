import { storeContract } from './helpers/store-contract.js'
import { redisClientHarness } from './helpers/store-harness.js'

// node-redis 5 (installed as `redis5`), the major many applications still hold.
storeContract(redisClientHarness('node-redis 5'))
