/*
 * handler.h - one FastCGI request, from parameters to response: the entry
 * points main.c uses (request.c; struct deferred is in derivative.h).
 */
#ifndef IMGSVC_HANDLER_H
#define IMGSVC_HANDLER_H

#include <fcgiapp.h>

#include "app.h"
#include "derivative.h"

/* Answers one request; fills later with work to do after FCGX_Finish_r. */
void handle_request(const struct app *app, FCGX_Request *rq, struct deferred *later);
/* Does that work (the cache write) and frees later. */
void handle_deferred(const struct app *app, struct deferred *later);
void handle_deferred_free(struct deferred *later);

#endif
