/*
 * request.h - one request as the serving modules (original.c,
 * derivative.c) see it: what request.c has parsed and admitted, and where
 * the answer goes.
 */
#ifndef IMGSVC_REQUEST_H
#define IMGSVC_REQUEST_H

#include "app.h"
#include "failure.h"
#include "reqlog.h"
#include "response.h"

struct request {
	const struct app *app;
	struct response *resp;
	struct reqlog *log;
	struct failure *fail;
	const char *key;    /* the original's S3 key */
	const char *rel;    /* its path below the originals prefix */
	const char *accept; /* the Accept header, for fm=auto */
};

#endif
