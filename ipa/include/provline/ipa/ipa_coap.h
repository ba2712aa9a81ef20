/* The IPA's ESipa transport over CoAP (GSMA SGP.32 v1.2 §6.2 CoAP binding, reference/EIM.md
 * §1.5): one CON POST per ESipa message to coaps://host:port/gsma/rsp2/asn1 (path
 * configurable), the DER body as payload with no Content-Format (the Uri-Path implies it),
 * RFC 7959 block-wise transfer in both directions for large bodies (libcoap
 * COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY), over DTLS 1.2 (libcoap 4.3.1, GnuTLS
 * back-end; DEPENDENCIES.md §3) with either
 *   - a pre-shared key (RFC 4279: identity + key), or
 *   - certificates: the eIM's (D)TLS certificate must chain to the configured CA file
 *     (SGP.32 §2.6.3; trustedPublicKeyDataTls may name the CA) and name the host.
 * Plain UDP (coap://) only with allow_plain, for tests.
 *
 * Errors returned by the post function (struct pl_esipa_transport_ops of ipa.h):
 * PL_ERR_DENIED when the DTLS handshake fails (wrong PSK, untrusted certificate: libcoap
 * reports COAP_NACK_TLS_FAILED), PL_ERR_TIMEOUT when no answer arrives in time (or
 * retransmissions ran out), PL_ERR_IO for other network failures, PL_ERR_REMOTE for a
 * 4.xx/5.xx answer, PL_ERR_OVERFLOW for a body over the caller's cap.
 *
 * libcoap's logging is process-wide: pl_ipa_coap_new() silences it (a library must not
 * print); a program that wants it can set its own handler afterwards.
 * The PSK is copied and zeroised on free. Not thread-safe. */
#ifndef PROVLINE_IPA_IPA_COAP_H
#define PROVLINE_IPA_IPA_COAP_H

#include "provline/ipa/ipa.h"
#include "provline/protocol/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_IPA_COAP_DEFAULT_PATH "gsma/rsp2/asn1"
#define PL_IPA_COAP_PSK_ID_MAX   128u
#define PL_IPA_COAP_PSK_MAX      64u

enum pl_ipa_coap_security {
    PL_IPA_COAP_PSK = 0,  /* coaps:// with identity + key */
    PL_IPA_COAP_CERT = 1, /* coaps:// verifying the server against ca_file */
    PL_IPA_COAP_PLAIN = 2 /* coap://, only with allow_plain */
};

struct pl_ipa_coap_config {
    /* "coaps://host:port[/path]" or "coap://..." (copied). host may be a name, an IPv4
     * literal or a bracketed IPv6 literal; the port defaults to 5684 / 5683. A path in the
     * URI overrides `path`. */
    const char *uri;
    /* Resource path without leading '/'; NULL = PL_IPA_COAP_DEFAULT_PATH. Copied. */
    const char *path;
    enum pl_ipa_coap_security security;
    /* PSK mode (copied). */
    const char *psk_identity;
    const uint8_t *psk;
    size_t psk_len;
    /* Certificate mode: PEM file of the CA that must have issued the eIM's (D)TLS
     * certificate (copied path; read at each handshake by GnuTLS). */
    const char *ca_file;
    /* Name sent as SNI and expected in the certificate; NULL = the URI's host. */
    const char *server_name;
    /* Required for PL_IPA_COAP_PLAIN (tests only). */
    bool allow_plain;
    /* CoAP retransmission: ACK timeout (RFC 7252 ACK_TIMEOUT) in ms, 0 = 2000, at most
     * 60000; maximum retransmissions, 0 = 4, at most 20. The post's timeout_ms bounds the
     * whole exchange anyway. */
    unsigned ack_timeout_ms;
    unsigned max_retransmit;
    /* Optional log line per failure (no newline). */
    void (*log)(void *user, const char *line);
    void *log_user;
};
void pl_ipa_coap_config_init(struct pl_ipa_coap_config *c);

struct pl_ipa_coap;

/* Validates the configuration and resolves nothing yet (the first post does).
 * PL_ERR_INVAL for a bad URI, a scheme that does not match `security`, coap:// without
 * allow_plain, a missing PSK / identity / CA file, a PSK or identity over its cap;
 * PL_ERR_UNSUPPORTED when libcoap has no DTLS. Returns owned *out (pl_ipa_coap_free). */
PL_MUST_CHECK int pl_ipa_coap_new(const struct pl_ipa_coap_config *cfg, struct pl_ipa_coap **out);
/* Accepts NULL. Releases the session, zeroises the key. */
void pl_ipa_coap_free(struct pl_ipa_coap *c);
/* The transport seam for pl_ipa_config.transport (user = c, borrowed). */
struct pl_esipa_transport_ops pl_ipa_coap_transport(struct pl_ipa_coap *c);
/* The same post function, callable directly. */
PL_MUST_CHECK int pl_ipa_coap_post(void *user, const uint8_t *req, size_t len, struct pl_wr *rsp,
                                   int timeout_ms);

#endif
