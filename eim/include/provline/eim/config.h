/* provline-eim configuration: one JSON file (docs/eim-api.md §Configuration).
 * Read with jansson under a size cap; every member of the sections parsed here is checked
 * (type, range, unknown keys rejected); other top-level sections are left to the modules
 * that own them (pl_eim_config_json). Paths are relative to the file's directory.
 * GSMA SGP.32 v1.2 §2.11.1.1.1 EimConfigurationData (the "eims" entries). */
#ifndef PROVLINE_EIM_CONFIG_H
#define PROVLINE_EIM_CONFIG_H

#include "provline/eim/store.h"
#include "provline/protocol/err.h"
#include "provline/protocol/sgp32_eim_config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_EIM_CONFIG_MAX_BYTES (1u << 20)
#define PL_EIM_CONFIG_MAX_ROOTS 8u

/* One eIM identity this server bootstraps devices with (GET /v1/bootstrap). */
struct pl_eim_identity {
    char *eim_id;
    char *eim_fqdn;      /* optional */
    int64_t eim_id_type; /* 0: absent, else PL_SGP32_EIM_ID_TYPE_* */
    bool has_counter;
    uint32_t counter_value; /* initial counterValue */
    bool has_association_token;
    int64_t association_token;       /* -1 asks the eUICC to compute one */
    enum pl_sgp32_key_kind key_kind; /* eimPublicKeyData */
    uint8_t *key_der;                /* complete DER SPKI or certificate */
    size_t key_der_len;
    enum pl_sgp32_key_kind tls_kind; /* trustedPublicKeyDataTls, optional */
    uint8_t *tls_der;
    size_t tls_der_len;
    bool has_protocols;
    uint32_t protocols; /* PL_SGP32_PROTO_* */
    uint8_t ci_pkid[64];
    size_t ci_pkid_len; /* euiccCiPKId, 0: absent */
    bool indirect_profile_download;
};

struct pl_eim_config {
    char *path;           /* the file read */
    char *listen_host;    /* "127.0.0.1" */
    uint16_t listen_port; /* 0: any free port */
    char *port_file;      /* optional: the bound port is written there */
    char *backend;        /* "sqlite" | "postgres" */
    char *sqlite_path;
    char *pg_conninfo;
    char *guard_path;
    uint32_t guard_block;
    uint32_t counter_max;
    size_t max_body;         /* request body cap (default 64 KiB) */
    size_t max_bulk_body;    /* POST /v1/devices/bulk cap (default 16 MiB) */
    size_t max_bulk_devices; /* devices in one batch (default 10000) */
    size_t n_roots;          /* CI certificates: CERT.EUICC chains are checked when set */
    uint8_t *roots[PL_EIM_CONFIG_MAX_ROOTS];
    size_t root_len[PL_EIM_CONFIG_MAX_ROOTS];
    size_t n_eims;
    struct pl_eim_identity eims[PL_SGP32_MAX_EIMS];
    json_t *json; /* the whole document, for other modules' sections */
};

/* Reads and checks a configuration file. On failure, err says what and where
 * ("eims[0].eim_id: ..."). Returns owned *out (pl_eim_config_free). */
PL_MUST_CHECK int pl_eim_config_load(const char *path, struct pl_eim_config **out, char *err,
                                     size_t cap);
void pl_eim_config_free(struct pl_eim_config *cfg); /* accepts NULL */
/* The parsed document (borrowed; valid while cfg lives). */
const json_t *pl_eim_config_json(const struct pl_eim_config *cfg);
/* The identity with this eimId, or the first when eim_id is NULL; NULL if none. */
const struct pl_eim_identity *pl_eim_config_identity(const struct pl_eim_config *cfg,
                                                     const char *eim_id);

/* Opens the configured store (backend, guard, counter limits). */
PL_MUST_CHECK int pl_eim_config_open_store(const struct pl_eim_config *cfg, bool for_recovery,
                                           bool guard_create, struct pl_eim_store **out);

#endif
