// The wire format both sides import: the frame, the rendezvous messages, the relay codec, the registration proof and
// key policy, and user names. The server and the client plugins depend on this folder, never on each other.
export * from '../core/wire'
export * from './names'
export * from './relay'
export * from './rendezvous'
export * from './channel'
export * from './service'
