// The ES module face of 'udsu/testing': the CommonJS build's values, named one by one (as core/index.mts does), so
// `import` and `require` share one copy of the harness.
export {
  createTestNetwork,
  describeTransportCompliance,
  DEFAULT_TEST_PLUGINS,
  describeEncryptionCompliance,
  DEFAULT_WAIT_MS,
  MEMORY_ADDRESS,
  MemorySwitch,
  memoryTransport,
} from './index.js'
export type * from './index.js'
