/* Tampering helpers for the audit trail tests (see pl_tamper.h). */
#define _POSIX_C_SOURCE 200809L
#include "pl_tamper.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pl_tamper_sql(const char *db, const char *sql, char *err, size_t cap)
{
    sqlite3 *h = NULL;
    char *msg = NULL;
    int rc = -1;

    if (err && cap)
        err[0] = '\0';
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK
        && sqlite3_exec(h, sql, NULL, NULL, &msg) == SQLITE_OK)
        rc = 0;
    if (rc != 0 && err && cap)
        snprintf(err, cap, "%s", msg ? msg : (h ? sqlite3_errmsg(h) : "open failed"));
    sqlite3_free(msg);
    sqlite3_close(h);
    return rc;
}

static uint8_t *slurp(const char *file, size_t *len)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *nb = realloc(buf, cap * 2);
        if (nb == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int spit(const char *file, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(file, "wb");
    if (f == NULL)
        return -1;
    size_t w = fwrite(buf, 1, len, f);
    int rc = (w == len && fclose(f) == 0) ? 0 : -1;
    if (w != len)
        fclose(f);
    return rc;
}

int pl_tamper_flip(const char *file, const void *needle, size_t n, size_t off)
{
    size_t len = 0;
    uint8_t *buf = slurp(file, &len);
    int rc = -1;
    if (buf == NULL)
        return -1;
    for (size_t i = 0; n > 0 && i + n <= len; i++) {
        if (memcmp(buf + i, needle, n) != 0)
            continue;
        if (i + off < len) {
            buf[i + off] ^= 0x01u;
            rc = spit(file, buf, len);
        }
        break;
    }
    free(buf);
    return rc;
}

int pl_tamper_flip_at(const char *file, size_t off)
{
    size_t len = 0;
    uint8_t *buf = slurp(file, &len);
    int rc = -1;
    if (buf != NULL && off < len) {
        buf[off] ^= 0x01u;
        rc = spit(file, buf, len);
    }
    free(buf);
    return rc;
}

int pl_tamper_copy(const char *from, const char *to)
{
    size_t len = 0;
    uint8_t *buf = slurp(from, &len);
    int rc = buf ? spit(to, buf, len) : -1;
    free(buf);
    return rc;
}

int pl_tamper_copy_trail(const char *from, const char *to)
{
    char a[1024], b[1024];
    snprintf(a, sizeof(a), "%s.head", from);
    snprintf(b, sizeof(b), "%s.head", to);
    return (pl_tamper_copy(from, to) == 0 && pl_tamper_copy(a, b) == 0) ? 0 : -1;
}
