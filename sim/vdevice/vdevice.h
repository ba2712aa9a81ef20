/* provline-vdevice internals: the virtual device (FPA + software eUICC) behind a serial pty or
 * a CoAP server, with fault injection. Sources: see main.c. Not a public header. */
#ifndef PROVLINE_SIM_VDEVICE_H
#define PROVLINE_SIM_VDEVICE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/ipa/fpa.h"
#include "provline/sim/euicc.h"

/* Exit codes (docs/fixture-protocol.md §6). */
#define VDEV_EXIT_OK 0        /* SIGTERM / SIGINT */
#define VDEV_EXIT_USAGE 1     /* bad arguments or configuration */
#define VDEV_EXIT_RUNTIME 2   /* I/O failure */
#define VDEV_EXIT_UNPLUGGED 3 /* --unplug-after-bytes reached */
#define VDEV_EXIT_POWER_CUT 4 /* --power-cut-at-write hit: the eUICC lost power */

struct vdev_faults {
    double drop;          /* probability per byte (serial) / per datagram (CoAP) */
    double corrupt;
    uint32_t delay_ms;    /* extra time before each answer */
    uint64_t unplug_after; /* bytes from the station; 0 = never */
    uint64_t unplug_after_apdus; /* APDUs to the eUICC; 0 = never */
    uint64_t apdus;
    uint64_t seed;
    uint64_t state;       /* PRNG state (splitmix64) */
    uint64_t bytes_in;
    uint64_t dropped, corrupted;
};

struct vdev {
    /* link */
    const char *pty_path;
    unsigned baud;
    const char *coap;     /* HOST:PORT */
    const char *resource;
    const char *psk_id;
    uint8_t psk[64];
    size_t psk_len;
    size_t mtu;
    uint32_t rto_ms;
    uint32_t max_retries;
    /* device */
    const char *euicc_path;
    struct pl_euicc *euicc;
    struct pl_fpa *fpa;
    struct vdev_faults f;
    volatile sig_atomic_t *stop;
};

/* Logs one line "provline-vdevice: ..." to stderr. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
void vdev_log(const char *fmt, ...);

/* Handles one fixture request through the FPA; the answer is appended to rsp. When the
 * eUICC lost power during it (--power-cut-at-write), logs and _exits VDEV_EXIT_POWER_CUT
 * without answering, as a device without power would. */
int vdev_handle(struct vdev *v, const uint8_t *req, size_t len, struct pl_wr *rsp);
/* The device was "unplugged" (link bytes or APDUs reached their limit): logs, closes the
 * eUICC without finishing anything (a load in progress is reported interrupted at its next
 * open), exits 3. */
_Noreturn void vdev_unplug(struct vdev *v);

/* Fault PRNG: uniform in [0, 1), and a random non-zero byte. */
double vdev_rand01(struct vdev_faults *f);
uint8_t vdev_rand_byte(struct vdev_faults *f);
/* Applies per-byte drop/corrupt to n bytes of buf in place; returns the bytes kept. */
size_t vdev_fault_bytes(struct vdev_faults *f, uint8_t *buf, size_t n);
bool vdev_any_packet_fault(const struct vdev_faults *f);

/* The two link modes; return the process exit code. */
int vdev_run_serial(struct vdev *v);
int vdev_run_coap(struct vdev *v);

#endif
