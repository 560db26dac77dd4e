// The RSA parameters of every udsu signature and key wrap: the server's registration proof, the handshake's signatures
// and its key transport. Both sides must use exactly these, so they live here once.
import { constants } from 'node:crypto'

/** RSA-PSS with SHA-256 (MGF1 follows the message digest) and a 32-byte salt, as every udsu signature. */
export const PSS = Object.freeze({ padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } as const)
/** RSA-OAEP as the handshake uses it; OpenSSL's MGF1 digest defaults to the OAEP digest, so this is MGF1-SHA-256. */
export const OAEP = Object.freeze({ padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' } as const)
