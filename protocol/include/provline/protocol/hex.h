/* Hex helpers for logs, CLI arguments and vector files. */
#ifndef PROVLINE_PROTOCOL_HEX_H
#define PROVLINE_PROTOCOL_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"

/* Writes 2*len lowercase hex digits and a NUL into out (cap >= 2*len+1). */
PL_MUST_CHECK int pl_hex_encode(const uint8_t *in, size_t len, char *out, size_t cap);
/* Strict: an even number of hex digits, nothing else. Writes at most cap bytes. */
PL_MUST_CHECK int pl_hex_decode(const char *hex, uint8_t *out, size_t cap, size_t *out_len);
/* Like pl_hex_decode but skips ASCII whitespace and ':' between digit pairs (vector files). */
PL_MUST_CHECK int pl_hex_decode_loose(const char *hex, uint8_t *out, size_t cap, size_t *out_len);

#endif
