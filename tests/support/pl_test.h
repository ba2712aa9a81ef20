/* Small helpers shared by the test binaries (never linked into a product). */
#ifndef PL_TEST_H
#define PL_TEST_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file into a malloc'd buffer (NUL-terminated as a convenience).
 * Returns NULL on error. */
uint8_t *pl_test_read_file(const char *path, size_t *len);
/* Path of a file under the source tree: PL_TEST_SRCDIR "/" rel (static buffer per call
 * site is not safe: copies into out). */
const char *pl_test_src(char *out, size_t cap, const char *rel);
/* Creates a fresh temporary directory; returns its path in out. */
int pl_test_tmpdir(char *out, size_t cap);
/* Removes a directory tree (best effort). */
void pl_test_rmtree(const char *path);
/* Runs a shell command, returns its exit status (or -1); output captured into out
 * (NUL-terminated, truncated to cap) when out != NULL. */
int pl_test_run(const char *cmd, char *out, size_t cap);
/* Starts `exe serve --config config` (a provline-eim; its stderr in dir/serve.log; it dies
 * with the test process) and waits up to 10 s for dir/port, the port file it writes once it
 * listens (the configuration must name it "port"). Returns the pid and *port, or -1 with
 * the reason and the log's text in err (the daemon exited, or never listened). */
int pl_test_eim_serve(const char *exe, const char *config, const char *dir, unsigned *port,
                      char *err, size_t err_cap);

#endif
