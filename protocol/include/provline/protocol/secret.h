/* Secret handling: zeroisation and constant-time comparison. */
#ifndef PROVLINE_PROTOCOL_SECRET_H
#define PROVLINE_PROTOCOL_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Zeroises n bytes in a way the compiler may not elide. p may be NULL when n == 0. */
void pl_memzero(void *p, size_t n);
/* Constant-time (in the contents) equality of two n-byte buffers. */
bool pl_ct_equal(const void *a, const void *b, size_t n);

#endif
