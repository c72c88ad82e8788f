/*
 * admin.c - the reserved paths: health and metrics (see admin.h).
 */
#include "admin.h"

#include <string.h>
#include <strings.h>

#include "auth.h"
#include "buf.h"
#include "config.h"
#include "path.h"
#include "state.h"

/* Prometheus metrics of the whole host, for the holder of the metrics key. */
static enum status serve_metrics(const struct app *app, struct response *resp,
				 const char *presented, const char *authorization,
				 struct failure *fail)
{
	const struct auth_key *who;

	/* Scrapers that can only send a bearer token (Prometheus) may. */
	if ((!presented || !*presented) && authorization &&
	    strncasecmp(authorization, "Bearer ", 7) == 0)
		presented = authorization + 7;

	if (!app->cfg->metrics_keys.n || !app->state) {
		fail->message = "Metrics are not enabled (see [metrics] in the configuration)";
		return ST_NOT_FOUND;
	}
	if (auth_check(&app->cfg->metrics_keys, presented, &who) != AUTH_OK)
		return ST_FORBIDDEN;
	struct buf body = BUF_INIT;
	state_metrics(app->state, &body);
	resp_text(resp, "text/plain; version=0.0.4; charset=utf-8", body.data, body.len);
	buf_free(&body);
	return ST_OK;
}

enum status admin_serve(const struct app *app, struct response *resp, const char *path,
			const struct admin_auth *auth, struct failure *fail)
{
	if (strcmp(path, PATH_RESERVED "metrics") == 0)
		return auth->several_keys
			   ? ST_FORBIDDEN
			   : serve_metrics(app, resp, auth->api_key, auth->authorization, fail);
	if (strcmp(path, PATH_RESERVED "health") == 0) {
		static const char body[] = "{\"status\":\"ok\"}\n";
		resp_text(resp, "application/json", body, sizeof body - 1);
		return ST_OK;
	}
	fail->message = "No such service path";
	return ST_NOT_FOUND;
}
