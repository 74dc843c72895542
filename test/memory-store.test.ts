import { storeContract } from './helpers/store-contract.js'
import { memoryHarness } from './helpers/store-harness.js'

storeContract(memoryHarness())
