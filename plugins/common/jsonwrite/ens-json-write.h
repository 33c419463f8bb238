/* ens-json-write.h — the one JSON writer: what the core encodes every reply
 * and event with, and what plugins and the shared libraries write JSON text
 * with.
 *
 * json-glib's own json_to_string() is not used anywhere: json-glib 1.6 writes
 * a double without a '.' in its text by appending ".0", so 1e30 becomes the
 * invalid "1e+30.0" (and NaN "nan.0").  Here a double is the shortest of
 * %.15g / %.17g that reads back exactly, and a non-finite one is null.
 *
 * A static library (not a host entry) because the core links it as well:
 * the core's encoder and the plugins' writers are one code. */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Appends @node as compact JSON text to @out; a NULL node is null. */
void ens_json_write (GString *out, JsonNode *node);

/* Appends @node indented by two spaces a level (for documents people read). */
void ens_json_write_pretty (GString *out, JsonNode *node);

/* Appends @text (UTF-8) as a JSON string, quotes included. */
void ens_json_write_string (GString *out, const char *text);

/* Appends @value in decimal, as printf's %" G_GINT64_FORMAT " /
 * %" G_GUINT64_FORMAT " would. */
void ens_json_write_int (GString *out, gint64 value);
void ens_json_write_uint (GString *out, guint64 value);

/* Appends @value as a JSON number (null when not finite). */
void ens_json_write_double (GString *out, double value);

/* (transfer full) @node as JSON text, compact or @pretty. */
char *ens_json_write_to_string (JsonNode *node, gboolean pretty);

G_END_DECLS
