// The ES module face of 'udsu': the CommonJS build's exports, re-exported, so `import` and `require` share one copy of
// every class (a `Veto` thrown by an ESM plugin is the core's `Veto`). The values are named one by one, so the module
// has exactly these on every Node line (`export *` from CommonJS also passes on `__esModule`, and on Node 23+
// `module.exports`); the pack test checks they match index.ts's. Types come through whole.
export {
  API_VERSION,
  Cancelled,
  definePlugin,
  isCancelled,
  isVeto,
  Veto,
  decodeFrame,
  encodeFrame,
  FIRST_PLUGIN_KIND,
  frameHeader,
  observeFrontendEvents,
  FrameKind,
  MAX_DATAGRAM_BYTES,
  NAME_HINT,
  NAME_PATTERN,
  DEFAULT_SERVER,
  defaultProfileDir,
  Profile,
  writeFileAtomic,
  Fifo,
  UdpSocket,
  boolean,
  either,
  list,
  number,
  object,
  oneOf,
  optional,
  string,
  validate,
} from './index.js'
export type * from './index.js'
