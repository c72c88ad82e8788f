/*
 * admin.h - the reserved paths under PATH_RESERVED: health (for load
 * balancers) and Prometheus metrics (for the holder of a metrics key).
 */
#ifndef IMGSVC_ADMIN_H
#define IMGSVC_ADMIN_H

#include <stdbool.h>

#include "app.h"
#include "failure.h"
#include "response.h"
#include "status.h"

/* What the request presented to prove it may see the metrics. */
struct admin_auth {
	const char *api_key; /* X-API-Key; NULL when absent */
	bool several_keys;   /* more than one X-API-Key: refused */
	const char *authorization;
};

/* Answers a request for path (under PATH_RESERVED); an error leaves resp to the caller. */
enum status admin_serve(const struct app *app, struct response *resp, const char *path,
			const struct admin_auth *auth, struct failure *fail);

#endif
