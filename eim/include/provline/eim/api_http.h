/* The eIM's northbound API: HTTP + JSON on libmicrohttpd, one bearer token per operator
 * (ARCHITECTURE.md §6 "operator <-> eIM"). Endpoints, roles, formats and errors:
 * docs/eim-api.md. GSMA SGP.32 v1.2 names the operations (§2.11.1 PSMOs/eCOs,
 * IpaEuiccDataRequest, ProfileDownloadTriggerRequest) and the bootstrap data
 * (§2.11.1.1.1 EimConfigurationData, §5.9.4 AddInitialEim 'BF57').
 *
 * The server runs one internal thread; every request is handled on it, so the store
 * handle given here must not be used by any other thread while the server runs.
 * Request bodies are capped (413), JSON is parsed by jansson with duplicate keys refused and
 * then checked member by member (400 with the offending member's path). */
#ifndef PROVLINE_EIM_API_HTTP_H
#define PROVLINE_EIM_API_HTTP_H

#include "provline/eim/config.h"
#include "provline/eim/store.h"
#include "provline/protocol/err.h"

#include <stdint.h>

struct pl_eim_api;

struct pl_eim_api_options {
    const struct pl_eim_config *cfg; /* borrowed: listen address, caps, eIM identities */
    struct pl_eim_store *store;      /* borrowed, used only by the server's thread */
    /* One line per request or event, no newline (may be NULL). */
    void (*log)(void *user, int level, const char *line);
    void *log_user;
};

/* Binds and starts serving. PL_ERR_IO if the address cannot be bound. */
PL_MUST_CHECK int pl_eim_api_start(const struct pl_eim_api_options *opt, struct pl_eim_api **out);
/* The bound TCP port (useful with port 0). */
uint16_t pl_eim_api_port(const struct pl_eim_api *api);
/* Stops serving (waits for the request in progress) and frees. Accepts NULL. */
void pl_eim_api_stop(struct pl_eim_api *api);

#endif
