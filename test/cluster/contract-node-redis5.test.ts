import { storeContract } from '../helpers/store-contract.js'
import { clusterClientHarness } from './harness.js'

storeContract(clusterClientHarness('node-redis 5'))
