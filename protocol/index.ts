// The wire format both sides import: the frame, the rendezvous messages, the relay codec, the registration proof and
// key policy, user names, and the rsa plugin's handshake and DATA body. The server and the client plugins depend on
// this folder, never on each other.
// reliable.ts (reliable delivery's frames) is imported by path: its names (encodeFrame, HEADER_BYTES) overlap the frame's.
export * from './frames'
export * from './endpoints'
export * from './names'
export * from './relay'
export * from './rendezvous'
export * from './channel'
export * from './service'
export * from './signatures'
export * from './probe'
export * from './envelope'
export * from './handshake'
