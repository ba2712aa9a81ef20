/* Internal: reading operation parameters (the JSON the northbound API stored with each
 * operation, engine.h "operation parameters"). Untrusted in the sense that the API checked
 * them once; the engine checks again, every member, with the codec's limits.
 * Never included outside eim/src. */
#ifndef PROVLINE_EIM_PACKAGE_JSON_H
#define PROVLINE_EIM_PACKAGE_JSON_H

#include "eim_engine_internal.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* snprintf(err, cap, fmt, ...) when err is not NULL. */
void pl_eimi_err(char *err, size_t cap, const char *fmt, ...) PL_EIMI_PRINTF(3, 4);
/* Parses params (NULL/empty: {}) into arena->json; the members must all be in `allowed`
 * (NULL-terminated). *obj borrows the arena. */
PL_MUST_CHECK int pl_eimi_json_open(const uint8_t *params, size_t len, struct pl_eimi_arena *arena,
                                    const char *const *allowed, json_t **obj, char *err,
                                    size_t cap);
/* A string member of min..max bytes without NUL; absent: out->p == NULL (or PL_ERR_INVAL
 * when required). Borrows the JSON. */
PL_MUST_CHECK int pl_eimi_json_str(json_t *obj, const char *key, bool required, size_t min,
                                   size_t max, struct pl_sgp32_buf *out, char *err, size_t cap);
/* A hex string member decoding to min..max bytes (kept in the arena). */
PL_MUST_CHECK int pl_eimi_json_hex(json_t *obj, const char *key, bool required, size_t min,
                                   size_t max, struct pl_eimi_arena *arena,
                                   struct pl_sgp32_buf *out, char *err, size_t cap);
PL_MUST_CHECK int pl_eimi_json_bool(json_t *obj, const char *key, bool *present, bool *out,
                                    char *err, size_t cap);
PL_MUST_CHECK int pl_eimi_json_int(json_t *obj, const char *key, bool *present, int64_t min,
                                   int64_t max, int64_t *out, char *err, size_t cap);
PL_MUST_CHECK int pl_eimi_json_iccid(json_t *obj, const char *key, bool required, bool *present,
                                     uint8_t iccid[PL_SGP32_ICCID_LEN], char *err, size_t cap);

#endif
