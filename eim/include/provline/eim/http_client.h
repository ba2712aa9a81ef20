/* A minimal HTTP/1.1 client for the northbound API's CLI and tests: one request per TCP
 * connection ("Connection: close"), plain HTTP, IPv4/IPv6 literal or host name, bounded
 * response size and a poll()-based timeout. Not a general client (no TLS, no redirects,
 * no chunked request bodies); the API is meant to be reached on loopback or through a
 * TLS-terminating proxy (docs/eim-api.md). RFC 9112 message syntax. */
#ifndef PROVLINE_EIM_HTTP_CLIENT_H
#define PROVLINE_EIM_HTTP_CLIENT_H

#include "provline/protocol/err.h"

#include <stddef.h>

struct pl_eim_http_req {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* "/v1/devices" (with query) */
    const char *token;        /* bearer token, or NULL */
    const char *auth_header;  /* a raw Authorization value (tests), overrides token */
    const char *content_type; /* NULL: application/json when there is a body */
    const void *body;
    size_t body_len;
};

struct pl_eim_http_resp {
    int status;
    char *body; /* NUL-terminated, heap */
    size_t body_len;
};

/* url: "http://HOST:PORT" (a trailing '/' is allowed). Returns PL_OK once a response was
 * read (whatever its status), PL_ERR_IO / PL_ERR_TIMEOUT on network failure,
 * PL_ERR_MALFORMED on an unparsable response, PL_ERR_OVERFLOW past max_resp bytes. */
PL_MUST_CHECK int pl_eim_http_do(const char *url, const struct pl_eim_http_req *req,
                                 size_t max_resp, int timeout_ms, struct pl_eim_http_resp *out);
void pl_eim_http_resp_clear(struct pl_eim_http_resp *r); /* accepts NULL */

#endif
