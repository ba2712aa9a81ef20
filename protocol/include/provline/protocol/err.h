/* provline error codes: one enum, negative values, PL_OK = 0.
 * Every fallible function in provline returns one of these (or a pointer).
 * Values are explicit and stable: they appear in logs and on the wire of
 * provline's own protocols, so never renumber an existing entry. */
#ifndef PROVLINE_PROTOCOL_ERR_H
#define PROVLINE_PROTOCOL_ERR_H

#if defined(__GNUC__) || defined(__clang__)
#define PL_MUST_CHECK __attribute__((warn_unused_result))
#else
#define PL_MUST_CHECK
#endif

enum pl_err {
    PL_OK = 0,
    PL_ERR_NOMEM = -1,
    PL_ERR_INVAL = -2,
    PL_ERR_TRUNCATED = -3,
    PL_ERR_MALFORMED = -4,
    PL_ERR_TIMEOUT = -5,
    PL_ERR_IO = -6,
    PL_ERR_CARD_SW = -7,
    PL_ERR_REMOTE = -8,
    PL_ERR_INTERNAL = -9,
    PL_ERR_OVERFLOW = -10,      /* output buffer too small / cap exceeded */
    PL_ERR_NOT_FOUND = -11,
    PL_ERR_STATE = -12,         /* operation not allowed in this state */
    PL_ERR_UNSUPPORTED = -13,
    PL_ERR_EXISTS = -14,
    PL_ERR_DENIED = -15,        /* authorisation refused */
    PL_ERR_REPLAY = -16,
    PL_ERR_DB = -17,
    PL_ERR_CONFIG = -18,
    PL_ERR_EXPIRED = -19,
    /* strict DER (ITU-T X.690 §10) */
    PL_ERR_DER_TAG = -30,        /* bad or unexpected tag */
    PL_ERR_DER_INDEFINITE = -31, /* indefinite length form (0x80) */
    PL_ERR_DER_NONMINIMAL = -32, /* length (or tag) not minimally encoded */
    PL_ERR_DER_LENGTH = -33,     /* length runs past the enclosing buffer */
    PL_ERR_DER_TRAILING = -34,   /* bytes left after the outermost value */
    PL_ERR_DER_DEPTH = -35,      /* nesting deeper than the limit */
    PL_ERR_DER_TOOBIG = -36,     /* length over the size cap */
    PL_ERR_DER_VALUE = -37,      /* content not valid for its type */
    /* crypto and PKI */
    PL_ERR_CRYPTO = -50,
    PL_ERR_BAD_SIGNATURE = -51,
    PL_ERR_BAD_MAC = -52,
    PL_ERR_BAD_KEY = -53,
    PL_ERR_CERT = -54,           /* certificate unparsable */
    PL_ERR_CERT_CHAIN = -55,     /* chain does not verify to the trust anchor */
    PL_ERR_CERT_VALIDITY = -56,  /* outside notBefore/notAfter */
    PL_ERR_CERT_USAGE = -57,     /* key usage / basic constraints / policy */
    PL_ERR_BAD_PADDING = -58,
};

/* Returns a static, human-readable string for any value (never NULL). */
const char *pl_strerror(int err);

#endif
