/*
 * auth.c - API key table and constant-time matching (see auth.h).
 */
#include "auth.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct auth_key *auth_add(struct auth_table *t, const char *name,
			  const unsigned char digest[SHA256_LEN], bool enabled)
{
	t->keys = xrealloc(t->keys, (t->n + 1) * sizeof *t->keys);
	struct auth_key *k = &t->keys[t->n++];
	k->name = xstrdup(name);
	memcpy(k->digest, digest, SHA256_LEN);
	k->enabled = enabled;
	k->plan = -1;
	return k;
}

enum auth_result auth_check(const struct auth_table *t, const char *presented,
			    const struct auth_key **key)
{
	unsigned char digest[SHA256_LEN];
	const struct auth_key *found = NULL;

	*key = NULL;
	if (!presented || !*presented)
		return AUTH_MISSING;
	crypto_sha256(presented, strlen(presented), digest);
	/*
	 * Visit every entry and never branch on a partial match: the time taken
	 * depends only on the table size. Comparing digests rather than keys
	 * also makes the compare length-independent of the presented key.
	 */
	for (size_t i = 0; i < t->n; i++) {
		bool eq = crypto_equal(digest, t->keys[i].digest, SHA256_LEN);
		found = eq ? &t->keys[i] : found;
	}
	if (!found)
		return AUTH_UNKNOWN;
	*key = found;
	return found->enabled ? AUTH_OK : AUTH_DISABLED;
}

void auth_table_free(struct auth_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->keys[i].name);
	free(t->keys);
	t->keys = NULL;
	t->n = 0;
}
