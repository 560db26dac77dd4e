// The ES module face of 'udsu': the CommonJS build's exports, re-exported, so `import` and `require` share one copy of
// every class (a `Veto` thrown by an ESM plugin is the core's `Veto`). Named exports only, as Node gives for CommonJS.
export * from './index.js'
