/* The eIM's ESipa endpoint: ASN.1 binding over CoAP (libcoap 4.3.1, GnuTLS DTLS backend).
 *
 * GSMA SGP.32 v1.2 §6.1 (ASN.1 binding: POST of a DER EsipaMessageFromIpaToEim to
 * /gsma/rsp2/asn1, answered with a DER EsipaMessageFromEimToIpa), §6.2 (CoAP binding: no
 * User-Agent / Content-Type, RFC 7959 block-wise transfer for large bodies, DTLS 1.2),
 * §2.6.3 (ESipa transport security); IETF RFC 7252 (CoAP), RFC 7959 §2.9.3 (4.13 Request
 * Entity Too Large, Size1), RFC 6347 (DTLS 1.2), RFC 4279 (PSK).
 * reference/DEPENDENCIES.md §3 (libcoap 4.3.1 gotchas), reference/EIM.md §1.5.
 *
 * Two layers:
 *  - pl_eim_esipa_handle(): transport-independent; one request body in, one answer body and
 *    a CoAP response code out. The fuzz target and any other binding use it directly.
 *  - pl_eim_esipa_start()/_poll()/_stop(): the CoAP server around it, driven by the caller's
 *    loop (no threads). libcoap's own log output is the process's business: the server does
 *    not touch coap_set_log_level() / coap_set_log_handler() (global state).
 *
 * Response code mapping (docs/eim-engine.md §7):
 *   2.04 Changed      an SGP.32 answer (including SGP.32 error answers such as GetEimPackage
 *                     eimPackageError eidNotFound(2), ProvideEimPackageResult
 *                     provideEimPackageResultError eidNotFound(2) / missingEid(4) /
 *                     undefinedError(127) for a rejected result); HandleNotification: no body
 *   4.00 Bad Request  not exactly one strictly valid EsipaMessageFromIpaToEim, or an arm the
 *                     IPA does not send (TransferEimPackageResponse): nothing changed
 *   4.03 Forbidden    the body names an EID other than the one bound to the DTLS PSK identity
 *   4.05              a method other than POST (libcoap)
 *   4.08 Request Entity Incomplete   block-wise body with a missing or out-of-order block
 *   4.13 Request Entity Too Large    body (or announced Size1) over max_body; Size1 = max_body
 *   5.00 Internal Server Error       store or other local failure */
#ifndef PROVLINE_EIM_ESIPA_SERVER_H
#define PROVLINE_EIM_ESIPA_SERVER_H

#include "provline/eim/engine.h"
#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_EIM_ESIPA_DEFAULT_PATH     "gsma/rsp2/asn1"
#define PL_EIM_ESIPA_DEFAULT_MAX_BODY (64u * 1024u)
#define PL_EIM_ESIPA_MAX_BODY_LIMIT   (1024u * 1024u)
#define PL_EIM_ESIPA_MAX_PARTIAL      32u /* block-wise bodies being received at once */

/* CoAP response codes as class * 100 + detail (2.04 -> 204). */
enum pl_eim_esipa_code {
    PL_EIM_ESIPA_CHANGED = 204,
    PL_EIM_ESIPA_BAD_REQUEST = 400,
    PL_EIM_ESIPA_FORBIDDEN = 403,
    PL_EIM_ESIPA_INCOMPLETE = 408,
    PL_EIM_ESIPA_TOO_LARGE = 413,
    PL_EIM_ESIPA_SERVER_ERROR = 500,
};

/* Handles one request body. peer_eid (may be NULL): the EID the transport authenticated.
 * Appends the answer body to rsp (nothing for HandleNotification and for error codes) and
 * sets *code. Returns PL_OK when *code was set (whatever it is), a negative value only for
 * invalid arguments. Bodies over max_body (0: PL_EIM_ESIPA_DEFAULT_MAX_BODY) get 4.13
 * without being parsed. */
PL_MUST_CHECK int pl_eim_esipa_handle(struct pl_eim_engine *eng, const uint8_t *peer_eid,
                                      const uint8_t *body, size_t len, size_t max_body,
                                      struct pl_wr *rsp, enum pl_eim_esipa_code *code);

/* ---- the CoAP server ---- */

/* Security of the endpoint. PSK and PKI may be combined on one DTLS endpoint. */
#define PL_EIM_ESIPA_SEC_PSK 0x1u /* DTLS-PSK: identity -> key from the store (device_find_psk) */
#define PL_EIM_ESIPA_SEC_PKI 0x2u /* DTLS with the server certificate cert_file / key_file */

struct pl_eim_esipa_config {
    /* Numeric IPv4 or IPv6 listen address; NULL: "127.0.0.1". */
    const char *address;
    /* UDP port; 0 picks a free one (read it back with pl_eim_esipa_port). The daemon uses
     * 5684 (coaps) by default. */
    uint16_t port;
    /* Uri-Path of the resource, without leading '/'; NULL: PL_EIM_ESIPA_DEFAULT_PATH. */
    const char *path;
    /* PL_EIM_ESIPA_SEC_* mask; 0 means plain UDP, which is refused unless
     * insecure_plain_udp is set (tests only: no transport security at all). */
    unsigned security;
    bool insecure_plain_udp;
    /* PKI: PEM files of the eIM's (D)TLS certificate and key (the eim-tls item of the test
     * PKI in a lab), and optionally a CA file of client roots (NULL: clients are not asked
     * for a certificate). */
    const char *cert_file;
    const char *key_file;
    const char *ca_file;
    /* PSK identity hint sent to clients; NULL: none. */
    const char *psk_hint;
    /* Largest request body accepted; 0: PL_EIM_ESIPA_DEFAULT_MAX_BODY; at most
     * PL_EIM_ESIPA_MAX_BODY_LIMIT. */
    size_t max_body;
    /* Idle DTLS sessions kept; 0: libcoap's default. */
    unsigned max_idle_sessions;
};

struct pl_eim_esipa_server;

/* Starts the endpoint. eng and store are borrowed and must outlive the server; store is the
 * handle the PSK callback looks identities up in (normally the engine's). Returns owned
 * *out. PL_ERR_INVAL (bad config, plain UDP without the flag), PL_ERR_UNSUPPORTED (no DTLS
 * in this libcoap), PL_ERR_IO (cannot bind), PL_ERR_CONFIG (certificate files unusable). */
PL_MUST_CHECK int pl_eim_esipa_start(const struct pl_eim_esipa_config *cfg,
                                     struct pl_eim_engine *eng, struct pl_eim_store *store,
                                     struct pl_eim_esipa_server **out);
/* Runs libcoap's I/O for up to timeout_ms (0: do what is ready and return at once; never
 * blocks forever). PL_OK or PL_ERR_IO. */
PL_MUST_CHECK int pl_eim_esipa_poll(struct pl_eim_esipa_server *s, unsigned timeout_ms);
/* A descriptor that becomes readable when pl_eim_esipa_poll has work (epoll builds of
 * libcoap), or -1: then call pl_eim_esipa_poll with a short timeout in a loop. */
int pl_eim_esipa_fd(const struct pl_eim_esipa_server *s);
/* The bound UDP port. */
uint16_t pl_eim_esipa_port(const struct pl_eim_esipa_server *s);
/* Stops and frees (accepts NULL); wipes PSK material it held. */
void pl_eim_esipa_stop(struct pl_eim_esipa_server *s);

/* ---- the service: engine + server from the "esipa" section of the provline-eim
 * configuration file (docs/eim-engine.md §8), for `provline-eim serve` ----
 *
 *   "esipa": {
 *     "signing_key": "pki/eim.key",        PEM SK.EIM.ECDSA (required)
 *     "eim_id": "eim.example",             default: options.default_eim_id
 *     "claimer": "eim-1",                  default "eim"
 *     "address": "0.0.0.0", "port": 5684,  defaults "127.0.0.1", 5684
 *     "path": "gsma/rsp2/asn1",
 *     "security": ["psk", "pki"],          default ["psk"]
 *     "certificate": "pki/eim-tls.crt", "private_key": "pki/eim-tls.key",
 *     "client_ca": "...",                  optional (PKI)
 *     "psk_hint": "...",                   optional
 *     "insecure_plain_udp": false,         true only with "security": []
 *     "max_body": 65536,
 *     "result_timeout_ms": 600000, "requery_timeout_ms": 86400000
 *   }
 * Relative paths are resolved against base_dir. Unknown members are an error. */
struct pl_eim_esipa_service_options {
    const void *section;  /* the "esipa" json_t object (borrowed during the call) */
    const char *base_dir; /* NULL: paths as given */
    /* CI certificates (DER) that CERT.EUICC chains must reach; at least one. */
    const uint8_t *const *roots;
    const size_t *root_len;
    size_t n_roots;
    const char *default_eim_id;
    /* A store handle for the service alone (borrowed; one thread uses it: the one that
     * polls the service). */
    struct pl_eim_store *store;
    struct pl_eim_log_ops log;
    /* Check the section only (serve --check-config): members, signing key, roots, TLS files
     * readable; no store needed, nothing is started and *out stays NULL. */
    bool check_only;
};

struct pl_eim_esipa_service;

/* Parses the section, loads the signing key (zeroised on stop) and the roots, creates the
 * engine and starts the server. On failure err names the member at fault. */
PL_MUST_CHECK int pl_eim_esipa_service_start(const struct pl_eim_esipa_service_options *o,
                                             struct pl_eim_esipa_service **out, char *err,
                                             size_t err_cap);
/* One round of I/O, as pl_eim_esipa_poll. */
PL_MUST_CHECK int pl_eim_esipa_service_poll(struct pl_eim_esipa_service *svc, unsigned timeout_ms);
/* Polls (200 ms rounds) until *stop becomes non-zero; for a dedicated thread (another thread
 * sets *stop, then joins). PL_OK, or the first poll error. */
PL_MUST_CHECK int pl_eim_esipa_service_run(struct pl_eim_esipa_service *svc,
                                           const atomic_int *stop);
uint16_t pl_eim_esipa_service_port(const struct pl_eim_esipa_service *svc);
void pl_eim_esipa_service_stop(struct pl_eim_esipa_service *svc); /* accepts NULL */

#endif
