/* ens-json.h — the core's JSON: the one writer (ens-json-write.h:
 * ens_json_write, ens_json_write_string), timestamps and node builders
 * (ens-json.c) and a strict parser for untrusted text (ens-json-parse.c),
 * all on json-glib trees. */
#pragma once

#include <json-glib/json-glib.h>

#include "ens-json-write.h"

G_BEGIN_DECLS

void ens_json_append_timestamp (GString *out, gint64 real_time_us);
/* @member = the timestamp as a string, in the same ISO 8601 form. */
void ens_json_set_timestamp (JsonObject *obj, const char *member, gint64 real_time_us);
/* (transfer full) compact text of @node (transfer none). */
char *ens_json_to_string (JsonNode *node);
/* Untrusted input: depth-limited, one value per text. (transfer full) */
JsonNode *ens_json_parse (const char *text, gsize len, GError **error);
/* Whether ens_json_parse() would accept @text, without building the tree. */
gboolean ens_json_check (const char *text, gsize len, GError **error);
/* (transfer none) a string member of @obj (may be NULL), or NULL when absent
 * or not a string. */
const char *ens_json_get_string (JsonObject *obj, const char *member);
/* Returns a node holding a new empty object (transfer full); *out_obj is
 * that object, (transfer none). */
JsonNode *ens_json_object_node (JsonObject **out_obj);
/* (transfer full) an array node of the first @n strings of @strv (stops at
 * NULL; G_MAXUINT: all). */
JsonNode *ens_json_strv_node (const char *const *strv, guint n);

G_END_DECLS
