/* provline error strings. */
#include "provline/protocol/err.h"

const char *pl_strerror(int err)
{
    switch (err) {
    case PL_OK: return "success";
    case PL_ERR_NOMEM: return "out of memory";
    case PL_ERR_INVAL: return "invalid argument";
    case PL_ERR_TRUNCATED: return "input truncated";
    case PL_ERR_MALFORMED: return "malformed input";
    case PL_ERR_TIMEOUT: return "timed out";
    case PL_ERR_IO: return "I/O error";
    case PL_ERR_CARD_SW: return "card returned an error status word";
    case PL_ERR_REMOTE: return "remote peer reported an error";
    case PL_ERR_INTERNAL: return "internal error";
    case PL_ERR_OVERFLOW: return "buffer too small or size cap exceeded";
    case PL_ERR_NOT_FOUND: return "not found";
    case PL_ERR_STATE: return "not allowed in the current state";
    case PL_ERR_UNSUPPORTED: return "unsupported";
    case PL_ERR_EXISTS: return "already exists";
    case PL_ERR_DENIED: return "permission denied";
    case PL_ERR_REPLAY: return "replay detected";
    case PL_ERR_DB: return "database error";
    case PL_ERR_CONFIG: return "configuration error";
    case PL_ERR_EXPIRED: return "expired";
    case PL_ERR_DER_TAG: return "DER: bad or unexpected tag";
    case PL_ERR_DER_INDEFINITE: return "DER: indefinite length not allowed";
    case PL_ERR_DER_NONMINIMAL: return "DER: non-minimal encoding";
    case PL_ERR_DER_LENGTH: return "DER: length runs past the buffer";
    case PL_ERR_DER_TRAILING: return "DER: trailing bytes";
    case PL_ERR_DER_DEPTH: return "DER: nesting too deep";
    case PL_ERR_DER_TOOBIG: return "DER: length over the size cap";
    case PL_ERR_DER_VALUE: return "DER: invalid value for the type";
    case PL_ERR_CRYPTO: return "cryptographic operation failed";
    case PL_ERR_BAD_SIGNATURE: return "signature does not verify";
    case PL_ERR_BAD_MAC: return "MAC does not verify";
    case PL_ERR_BAD_KEY: return "invalid key";
    case PL_ERR_CERT: return "certificate cannot be parsed";
    case PL_ERR_CERT_CHAIN: return "certificate chain does not verify";
    case PL_ERR_CERT_VALIDITY: return "certificate outside its validity period";
    case PL_ERR_CERT_USAGE: return "certificate key usage or constraints wrong";
    case PL_ERR_BAD_PADDING: return "bad padding";
    }
    return "unknown error";
}
