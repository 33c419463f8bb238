/* ens-upstream-json.h — reading JSON that came from an upstream server:
 * a parser that bounds nesting, type-checked member reads, the error
 * domain of the upstream library, and what an error body says.
 *
 * Every value an upstream sends is untrusted.  The readers here never call
 * a json-glib getter on a node of the wrong type: an absent or null member
 * reads as absent, a member of another type sets an ENS_UPSTREAM_ERROR_MALFORMED
 * error naming where it was.  The error is "sticky": a reader called with
 * *@error already set does nothing, so a parser reads several members and
 * checks once.  With @error NULL a wrong type reads as absent (lenient, for
 * requests that come from our own clients). */
#pragma once

#include <ensemble/ensemble.h>

G_BEGIN_DECLS

#define ENS_UPSTREAM_ERROR (ens_upstream_error_quark ())
GQuark ens_upstream_error_quark (void);

typedef enum {
  ENS_UPSTREAM_ERROR_MALFORMED,  /* not JSON, or a value of the wrong type */
  ENS_UPSTREAM_ERROR_LIMIT,      /* over a cap: line, answer, tool calls */
  ENS_UPSTREAM_ERROR_REPORTED,   /* the upstream reported an error in its answer */
  ENS_UPSTREAM_ERROR_OVERLOADED, /* ... that says it is overloaded or rate limited */
} EnsUpstreamError;

/* The completion error code for @error: RATE_LIMITED for OVERLOADED,
 * UPSTREAM_ERROR for everything else. */
const char *ens_upstream_error_completion_code (const GError *error);

/* Parses untrusted JSON text: (transfer full) the root, or NULL with
 * @error set.  Same signature as the host table's json_parse. */
typedef JsonNode *(*EnsUpstreamParseFunc) (const char *text, gsize len, GError **error);

/* The host's reading of JSON without a tree (EnsHost.json_scan_members and
 * json_scan_checked_members, ABI 1.5), which accepts exactly what its
 * json_parse accepts.  Readers take the common shapes of an answer from its
 * text with it, and anything else through a parsed tree. */
typedef struct {
  gboolean (*members) (const char *text, gsize len, EnsJsonScanFunc func, gpointer user_data, GError **error);
  gboolean (*checked_members) (const char *text, gsize len, EnsJsonScanFunc func, gpointer user_data);
} EnsUpstreamScanner;

/* A parser for when the host has none: json-glib, after a scan that refuses
 * nesting deeper than 512 levels (json-glib recurses once per level). */
JsonNode *ens_upstream_json_parse (const char *text, gsize len, GError **error);

/* (transfer none) the string member @member of @obj (may be NULL), or NULL
 * when absent, null, or of another type (then *@error is set, naming
 * @where.@member; @where may be NULL). */
const char *ens_upstream_string (JsonObject *obj, const char *member, const char *where, GError **error);
/* (transfer none) an object member, or NULL; same rules. */
JsonObject *ens_upstream_object (JsonObject *obj, const char *member, const char *where, GError **error);
/* (transfer none) an array member, or NULL; same rules. */
JsonArray *ens_upstream_array (JsonObject *obj, const char *member, const char *where, GError **error);
/* TRUE with *@out set when @member is an integer (a number with an integral
 * value also counts); FALSE when absent or null; another type sets *@error. */
gboolean ens_upstream_int (JsonObject *obj, const char *member, const char *where, gint64 *out, GError **error);
/* Like ens_upstream_int, for a count: a negative number sets *@error too. */
gboolean ens_upstream_count (JsonObject *obj, const char *member, const char *where, gint64 *out,
                             GError **error);
/* TRUE with *@out set when @member is a number. */
gboolean ens_upstream_number (JsonObject *obj, const char *member, const char *where, double *out,
                              GError **error);
/* @member as a boolean, @fallback when absent, null or of another type. */
gboolean ens_upstream_boolean (JsonObject *obj, const char *member, gboolean fallback);

/* (transfer full) the human message of an upstream error body:
 * {error:{message, type?}} (OpenAI, Anthropic), {error:"..."} (Ollama),
 * {message}, else the text itself, shortened to 300 characters. */
char *ens_upstream_error_message (const char *body, gsize len);

/* (transfer full) @len bytes of @text made valid UTF-8, stripped and cut
 * to 300 characters; "(no details)" when nothing is left. */
char *ens_upstream_shorten (const char *text, gsize len);


/* (transfer full) @node as compact JSON bytes. */
GBytes *ens_upstream_json_bytes (JsonNode *node);

G_END_DECLS
