/* Test helpers that tamper with stored files the way an attacker or an accident would:
 * SQL on a SQLite file, a flipped byte, copies. Used by the audit trail tests
 * (tests/unit/test_audit.c, tests/integration/test_audit_cli.c). Never linked into a
 * product. */
#ifndef PL_TAMPER_H
#define PL_TAMPER_H

#include <stddef.h>

/* Runs sql (several statements allowed) on the SQLite file at db. 0 on success, else -1 and
 * the SQLite message in err (may be NULL). */
int pl_tamper_sql(const char *db, const char *sql, char *err, size_t cap);
/* XORs 0x01 into the byte at offset off after the first occurrence of needle (n bytes) in
 * file. 0, or -1 if not found / I/O error. */
int pl_tamper_flip(const char *file, const void *needle, size_t n, size_t off);
/* XORs 0x01 into the byte at absolute offset off. 0 or -1. */
int pl_tamper_flip_at(const char *file, size_t off);
/* Copies a file (0 or -1). */
int pl_tamper_copy(const char *from, const char *to);
/* Copies an audit trail: the SQLite file and its ".head" sidecar. 0 or -1. */
int pl_tamper_copy_trail(const char *from, const char *to);

#endif
