/* ens-json.h — the core's JSON: the one writer (ens-json-write.h:
 * ens_json_write, ens_json_write_string), timestamps and node builders
 * (ens-json.c) and a strict parser for untrusted text (ens-json-parse.c),
 * all on json-glib trees. */
#pragma once

#include <json-glib/json-glib.h>

#include "ens-json-write.h"

G_BEGIN_DECLS

void ens_json_append_timestamp (GString *out, gint64 real_time_us);
/* @us microseconds as milliseconds with three decimals (%.3f of us / 1000),
 * negative as 0.000. */
void ens_json_append_millis (GString *out, gint64 us);
/* @member = the timestamp as a string, in the same ISO 8601 form. */
void ens_json_set_timestamp (JsonObject *obj, const char *member, gint64 real_time_us);
/* (transfer full) compact text of @node (transfer none). */
char *ens_json_to_string (JsonNode *node);
/* Untrusted input: depth-limited, one value per text. (transfer full) */
JsonNode *ens_json_parse (const char *text, gsize len, GError **error);
/* Whether the member about to be read should be kept as text; @head is the
 * top-level object as far as it is parsed (transfer none). */
typedef gboolean (*EnsJsonKeepFunc) (JsonObject *head, gpointer data);
/* ens_json_parse() of @text, except that the value of the top-level member
 * @member, if it is an object or an array and @want says so when it comes,
 * is checked but not built: it is absent from the tree, and *@kept and
 * *@kept_len give its text, a span of @text (else NULL and 0). */
JsonNode *ens_json_parse_keep_text (const char *text, gsize len, const char *member, EnsJsonKeepFunc want,
                                    gpointer data, const char **kept, gsize *kept_len, GError **error);
/* One member of an object being scanned: its name, its value's text (a
 * span of the scanned text) and, for a string, the string (else NULL).
 * All (transfer none), valid during the call. */
typedef void (*EnsJsonMemberFunc) (const char *name, const char *value, gsize value_len, const char *string,
                                   gpointer data);
/* Checks @text as ens_json_parse() does, and calls @func for each member of
 * its top-level object in order, without building anything.  FALSE (and
 * @error) when the text is refused or not an object; members before the
 * fault may have been reported. */
gboolean ens_json_scan_members (const char *text, gsize len, EnsJsonMemberFunc func, gpointer data, GError **error);
/* The same for an object ens_json_parse() has accepted already (data the
 * core checked): values are skipped by their brackets and quotes, not
 * checked again.  FALSE when @text turns out not to be an object. */
gboolean ens_json_scan_checked_members (const char *text, gsize len, EnsJsonMemberFunc func, gpointer data);
/* Whether ens_json_parse() would accept @text, without building the tree. */
gboolean ens_json_check (const char *text, gsize len, GError **error);
/* (transfer none) a string member of @obj (may be NULL), or NULL when absent
 * or not a string. */
const char *ens_json_get_string (JsonObject *obj, const char *member);
/* @member of @obj = @value: the node there updated in place when it holds
 * a value of that type already (else a new one).  Only for objects whose
 * nodes nobody shares. */
void ens_json_put_string (JsonObject *obj, const char *member, const char *value);
void ens_json_put_double (JsonObject *obj, const char *member, double value);
/* Returns a node holding a new empty object (transfer full); *out_obj is
 * that object, (transfer none). */
JsonNode *ens_json_object_node (JsonObject **out_obj);
/* (transfer full) an array node of the first @n strings of @strv (stops at
 * NULL; G_MAXUINT: all). */
JsonNode *ens_json_strv_node (const char *const *strv, guint n);

G_END_DECLS
