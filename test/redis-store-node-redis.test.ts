import { storeContract } from './helpers/store-contract.js'
import { redisClientHarness } from './helpers/store-harness.js'

// The official `redis` package (node-redis), through its adapter.
storeContract(redisClientHarness('node-redis'))
