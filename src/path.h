/*
 * path.h - the rules an image path must pass before it becomes an S3 key.
 *
 * PATH_INFO arrives already percent-decoded by the web server and is used
 * exactly as it is: never decoded again, so "/a%41.jpg" names the object
 * "a%41.jpg". These checks are defence in depth behind the web server's own
 * normalisation (README "Paths").
 */
#ifndef IMGSVC_PATH_H
#define IMGSVC_PATH_H

#include <stddef.h>

#include "buf.h"
#include "status.h"

#define PATH_MAX_KEY 1024 /* bytes of S3 key, prefix included (S3's limit) */

/* Paths under this prefix are the service's own, never image keys. */
#define PATH_RESERVED "/_imgsvc/"

/*
 * Checks path_info ("/a/b.jpg") and builds the object key prefix + "a/b.jpg"
 * into key. Returns ST_OK or ST_BAD_REQUEST with *why set to a static
 * message for the client.
 */
enum status path_to_key(const char *path_info, const char *prefix, struct buf *key,
			const char **why);

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
size_t path_utf8_len(const unsigned char *s, size_t avail);

#endif
