import { storeContract } from './helpers/store-contract.js'
import { redisHarness } from './helpers/store-harness.js'

storeContract(redisHarness())
