// The frame format moved to protocol/ (the one wire format module both sides import); this name stays so existing
// imports keep working. New code imports from '../protocol' (or, in a plugin, from the core's public entry).
export * from '../protocol/frames'
export * from '../protocol/endpoints'
