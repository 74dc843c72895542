import { storeContract } from '../helpers/store-contract.js'
import { clusterHarness } from './harness.js'

storeContract(clusterHarness())
