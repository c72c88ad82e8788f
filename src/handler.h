/*
 * handler.h - one FastCGI request, from parameters to response.
 */
#ifndef IMGSVC_HANDLER_H
#define IMGSVC_HANDLER_H

#include <fcgiapp.h>

#include "config.h"
#include "s3.h"

/* What lives as long as the process and every request uses. */
struct app {
	const struct cfg *cfg;
	struct s3_client *s3;
};

void handle_request(const struct app *app, FCGX_Request *rq);

#endif
