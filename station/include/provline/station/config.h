/* provline-station configuration: an INI file parsed with libinih, validated in full, with
 * one clear message per error (`provline-station --check-config`).
 *
 * Sources: ARCHITECTURE.md §7 (--config FILE, --check-config, embedded defaults);
 * reference/STYLE.md §7.3 rules 7 and 10, §7.4 (config check, man pages); reference/IFPP.md
 * §6.3 (station, fixtures, Key Maker); DEPENDENCIES.md §6 (CurveZMQ keys), §7 (serial
 * rates). The file format, every key and its default: docs/station.conf.5.md.
 *
 *   [line]      station_id, batch_id, prefetch_depth, expected_eids, max_loads, once
 *   [keymaker]  endpoint, server_public_key, client_secret_key, client_public_key
 *   [storage]   journal, audit, packages
 *   [eim]       add_initial_eim (a DER 'BF57' file) | eim_id + eim_fqdn + eim_certificate
 *   [metrics]   listen (127.0.0.1:PORT, loopback only) | unix (socket path)
 *   [log]       level
 *   [timers]    T_... (every named timer of timers.h)
 *   [fixture NAME]  transport serial|coap, port (device path | host:port), baud,
 *                   psk_identity, psk_key (hex)
 *
 * The PSK keys are secrets: pl_station_config_deinit() zeroises them. */
#ifndef PROVLINE_STATION_CONFIG_H
#define PROVLINE_STATION_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"
#include "provline/station/timers.h"

#define PL_STATION_FIXTURES_MAX 64u
#define PL_STATION_NAME_MAX 31u   /* fixture name characters: [A-Za-z0-9_.-] */
#define PL_STATION_PATH_MAX 512u
#define PL_STATION_PSK_MAX 64u    /* bytes of a DTLS PSK */
#define PL_STATION_PSK_ID_MAX 64u  /* = PL_FIXTURE_PSK_ID_MAX */
#define PL_STATION_DIAG_MAX 32u   /* messages kept by one check */
#define PL_STATION_DIAG_LEN 240u
#define PL_STATION_EIM_REQ_MAX 16384u /* = PL_FX_EIM_REQ_MAX */

enum pl_fixture_transport {
    PL_FIXTURE_SERIAL = 1,
    PL_FIXTURE_COAP = 2,
};

struct pl_fixture_cfg {
    char name[PL_STATION_NAME_MAX + 1];
    enum pl_fixture_transport transport;
    char port[PL_STATION_PATH_MAX];     /* serial: device path; coap: host:port */
    unsigned baud;                      /* serial only; default 115200 */
    char host[256];                     /* coap: host part of port */
    uint16_t udp_port;                  /* coap: port part */
    bool has_psk;                       /* coap: DTLS-PSK */
    char psk_identity[PL_STATION_PSK_ID_MAX + 1];
    uint8_t psk_key[PL_STATION_PSK_MAX];
    size_t psk_key_len;
};

enum pl_metrics_kind {
    PL_METRICS_OFF = 0,
    PL_METRICS_TCP = 1,  /* loopback TCP, HTTP/1.0 */
    PL_METRICS_UNIX = 2, /* unix stream socket, HTTP/1.0 */
};

enum pl_station_log_level {
    PL_STATION_LOG_ERROR = 0,
    PL_STATION_LOG_WARN = 1,
    PL_STATION_LOG_INFO = 2,
    PL_STATION_LOG_DEBUG = 3,
};

struct pl_station_config {
    /* [line] */
    char station_id[64];                /* Hello.station_id; default "provline-station" */
    char batch_id[65];                  /* expected envelope batchId; empty = any */
    unsigned prefetch_depth;            /* 0 = just-in-time only (default) */
    char expected_eids[PL_STATION_PATH_MAX]; /* prefetch candidates: one hex EID per line */
    unsigned max_loads;                 /* packages tried on one device; default 3 */
    bool once;                          /* exit when every fixture is done or failed */
    /* [keymaker] */
    char km_endpoint[256];
    char km_server_public[PL_STATION_PATH_MAX];
    char km_client_secret[PL_STATION_PATH_MAX];
    char km_client_public[PL_STATION_PATH_MAX];
    char km_checkpoint_cert[PL_STATION_PATH_MAX]; /* DER cert whose key signs checkpoints */
    /* [storage] */
    char journal[PL_STATION_PATH_MAX];
    char audit[PL_STATION_PATH_MAX];
    char packages[PL_STATION_PATH_MAX];
    /* [eim]: the AddInitialEim 'BF57' request sent at the end of production (owned; NULL
     * when no [eim] section: the step is then skipped). */
    char eim_file[PL_STATION_PATH_MAX];
    char eim_id[129];
    char eim_fqdn[256];
    char eim_cert[PL_STATION_PATH_MAX];
    uint8_t *eim_request;
    size_t eim_request_len;
    /* [metrics] */
    enum pl_metrics_kind metrics;
    char metrics_host[64];
    uint16_t metrics_port;              /* 0 = any free port (logged) */
    char metrics_unix[108];
    /* [log] */
    enum pl_station_log_level log_level;
    /* [timers] */
    struct pl_timers timers;
    /* [fixture NAME] */
    size_t n_fixtures;
    struct pl_fixture_cfg fixtures[PL_STATION_FIXTURES_MAX];
};

/* Messages of a load / check: one line each, "section key: what is wrong". */
struct pl_station_diag {
    size_t n;        /* messages kept (at most PL_STATION_DIAG_MAX) */
    size_t dropped;  /* further messages not kept */
    char msg[PL_STATION_DIAG_MAX][PL_STATION_DIAG_LEN];
};

/* Defaults (no fixture, no Key Maker endpoint). Cannot fail. */
void pl_station_config_init(struct pl_station_config *c);
/* Frees eim_request and zeroises the PSKs. Accepts an initialised config. */
void pl_station_config_deinit(struct pl_station_config *c);

/* Parses the INI file at path into *c (initialised by the caller) and then validates it
 * with pl_station_config_check(). Every problem found is added to *diag (may be NULL).
 * PL_OK, or PL_ERR_CONFIG when at least one error was found, PL_ERR_IO when the file
 * cannot be read. */
PL_MUST_CHECK int pl_station_config_load(const char *path, struct pl_station_config *c,
                                         struct pl_station_diag *diag);
/* Same from a string (tests). */
PL_MUST_CHECK int pl_station_config_load_string(const char *text, struct pl_station_config *c,
                                                struct pl_station_diag *diag);

/* Validates a parsed configuration against the file system: required keys present, key
 * files hold one Z85 key, storage directories exist and are writable, the eIM request
 * decodes (or is built from eim_id/eim_fqdn/eim_certificate), fixture names unique, serial
 * rates supported, CoAP addresses parse. Builds c->eim_request. PL_OK or PL_ERR_CONFIG. */
PL_MUST_CHECK int pl_station_config_check(struct pl_station_config *c,
                                          struct pl_station_diag *diag);

/* Adds a message to diag (printf-style). Accepts NULL diag. */
void pl_station_diag_add(struct pl_station_diag *diag, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

const char *pl_fixture_transport_name(enum pl_fixture_transport t);
const char *pl_station_log_level_name(enum pl_station_log_level l);

#endif
