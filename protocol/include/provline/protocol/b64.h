/* Strict base64 (RFC 4648 §4, standard alphabet, '=' padding required) for JSON (the eIM API,
 * its CLI and configuration files, the station batch). */
#ifndef PROVLINE_PROTOCOL_B64_H
#define PROVLINE_PROTOCOL_B64_H

#include "provline/protocol/err.h"

#include <stddef.h>
#include <stdint.h>

/* Length of the encoding of n bytes, without the NUL. */
size_t pl_b64_len(size_t n);
/* Writes the encoding and a NUL; cap >= pl_b64_len(n) + 1. */
PL_MUST_CHECK int pl_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap);
/* Strict decode: only the alphabet, length a multiple of 4, padding only at the end, and
 * zero unused bits. Returns owned *out (free()) of *len bytes; PL_ERR_MALFORMED otherwise,
 * PL_ERR_OVERFLOW past max decoded bytes. */
PL_MUST_CHECK int pl_b64_decode(const char *in, size_t n, size_t max, uint8_t **out,
                                    size_t *len);

#endif
