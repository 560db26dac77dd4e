// User names as every part of udsu checks them: the server at registration, clients in handshakes and commands.

/** Letters, digits, "_", "." and "-", 1 to 32 characters (and at most MAX_NAME_BYTES of UTF-8, see isName). */
export const NAME_PATTERN = /^[\p{L}\p{N}_.-]{1,32}$/u
export const NAME_HINT = 'must be 1 to 32 letters, digits, "_", "." or "-"'
/** Longest name in UTF-8 bytes: the handshake's and the relay's one-byte length fields carry at most this many. */
export const MAX_NAME_BYTES = 64
