// User names as every part of udsu checks them: the server at registration, clients in handshakes and commands.
import unhomoglyph from 'unhomoglyph'

/** Letters, digits, "_", "." and "-", 1 to 32 characters (and at most MAX_NAME_BYTES of UTF-8, see nameProblem). */
export const NAME_PATTERN = /^[\p{L}\p{N}_.-]{1,32}$/u
export const NAME_HINT = 'must be 1 to 32 letters, digits, "_", "." or "-"'
/** Longest name in UTF-8 bytes, everywhere: the handshake's one-byte length fields carry at most this many. */
export const MAX_NAME_BYTES = 64

/** Why a name cannot be registered, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (!NAME_PATTERN.test(name)) return `the name ${NAME_HINT}`
  const bytes = Buffer.byteLength(name, 'utf8')
  if (bytes > MAX_NAME_BYTES) return `the name is ${bytes} bytes of UTF-8; at most ${MAX_NAME_BYTES}`
  return undefined
}

/** A name compared as people read it: NFKC (fullwidth, mathematical letters) and case folded (upper then lower: ß → ss). */
export function foldName(name: string): string {
  return name.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC')
}

/**
 * The Unicode TR39 skeleton of the folded name (NFD, each character replaced by its prototype from confusables.txt,
 * NFD again): two names with one skeleton look alike ("alice" with a Latin or a Cyrillic а, "rn" and "m"), so at most
 * one of them may be registered.
 */
export function nameSkeleton(name: string): string {
  return unhomoglyph(foldName(name).normalize('NFD')).normalize('NFD')
}
