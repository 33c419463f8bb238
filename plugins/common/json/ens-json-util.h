/* ens-json-util.h — JSON helpers for plugins (the static library
 * plugins/common/json): object nodes with one ownership rule per name,
 * member getters that check the type instead of raising GLib criticals, and
 * request-parameter checks that say which field is wrong and what it must be.
 *
 * Everything here is plain json-glib; nothing talks to the host.  Values a
 * client or an upstream sent are untrusted: read them only through the
 * getters or the checks below, never with json_object_get_*_member (which
 * warns, or aborts under G_DEBUG=fatal-criticals, on a wrong type). */
#pragma once

#include <json-glib/json-glib.h>

#include "ens-json-write.h"

G_BEGIN_DECLS

/* ---- object nodes ---- */

/* (transfer full) a node holding a new empty object; *@obj is set to that
 * object, (transfer none): it lives as long as the node. */
JsonNode *ens_node_new_object (JsonObject **obj);
/* (transfer full) a node holding @obj, which it takes: @obj is
 * (transfer full) and must not be unreferenced by the caller. */
JsonNode *ens_node_take_object (JsonObject *obj);
/* (transfer full) a node holding @obj, (transfer none): the node takes its
 * own reference, the caller keeps its own. */
JsonNode *ens_node_ref_object (JsonObject *obj);
/* (transfer full) a node holding a new empty object. */
JsonNode *ens_node_empty_object (void);

/* ---- typed members: NULL @obj, a missing member, JSON null and a member
 * of another type all give the fallback (or NULL) ---- */

/* (transfer none) the member's node, NULL when missing or JSON null. */
JsonNode *ens_member (JsonObject *obj, const char *name);
/* (transfer none) the member as a string, else NULL. */
const char *ens_member_string (JsonObject *obj, const char *name);
/* (transfer none) the member as a string, else @fallback. */
const char *ens_member_string_or (JsonObject *obj, const char *name, const char *fallback);
/* (transfer none) the member as an object, else NULL. */
JsonObject *ens_member_object (JsonObject *obj, const char *name);
/* (transfer none) the member as an array, else NULL. */
JsonArray *ens_member_array (JsonObject *obj, const char *name);
/* The member as an integer (an integral JSON number), else @fallback. */
gint64 ens_member_int (JsonObject *obj, const char *name, gint64 fallback);
/* The member as a number (integer or not), else @fallback. */
double ens_member_double (JsonObject *obj, const char *name, double fallback);
/* The member as a boolean, else @fallback. */
gboolean ens_member_bool (JsonObject *obj, const char *name, gboolean fallback);
/* Sets @to's @name to json_node_copy() of @from's @member (a new node;
 * an object or array in it is shared, not copied), when @from has it (JSON
 * null included); both objects (transfer none). */
void ens_member_copy (JsonObject *to, const char *name, JsonObject *from, const char *member);
/* (transfer none) the string at @index of @array (may be NULL), else NULL. */
const char *ens_array_string (JsonArray *array, guint index);
/* (transfer none) the object at @index of @array (may be NULL), else NULL. */
JsonObject *ens_array_object (JsonArray *array, guint index);

/* (transfer full) the text of a chat message's content (transfer none, may
 * be NULL): a string as it is, or the string "text" members of an array of
 * parts, @separator (transfer none) between two of them once there is text;
 * "" for anything else. */
char *ens_content_text (JsonNode *content, const char *separator);

/* ---- writing JSON text without a tree ---- */

/* Writing JSON text (for hot paths that write a known shape straight to
 * text, and anything written without the host): ens-json-write.h. */

/* ---- request parameters ---- */

/* What is wrong with a request: the field at fault and what it must be,
 * e.g. {"topic", "a non-empty string of at most 1024 bytes"}.  @field is
 * (transfer none): the name passed to the check, which must outlive the
 * EnsInvalid's use. */
typedef struct {
  const char *field;
  char expected[160];
} EnsInvalid;

typedef enum {
  ENS_PARAM_OPTIONAL = 0,      /* missing or JSON null: accepted, *out left as it was */
  ENS_PARAM_REQUIRED = 1 << 0, /* missing or JSON null: invalid */
  ENS_PARAM_NON_EMPTY = 1 << 1 /* strings: "" is invalid; arrays: [] is invalid */
} EnsParamFlags;

/* Each check: TRUE when @field of @params (may be NULL: no parameters) is
 * acceptable, with *@out set when it is present; else FALSE with @invalid
 * filled ({field, expected}).  Results are (transfer none), valid as long
 * as @params. */

/* A string; @max_bytes 0: no limit. */
gboolean ens_param_string (JsonObject *params, const char *field, EnsParamFlags flags, gsize max_bytes,
                           const char **out, EnsInvalid *invalid);
/* An integer in [@min, @max] (a JSON number without fraction). */
gboolean ens_param_int (JsonObject *params, const char *field, EnsParamFlags flags, gint64 min, gint64 max,
                        gint64 *out, EnsInvalid *invalid);
/* A number in [@min, @max]. */
gboolean ens_param_double (JsonObject *params, const char *field, EnsParamFlags flags, double min, double max,
                           double *out, EnsInvalid *invalid);
gboolean ens_param_bool (JsonObject *params, const char *field, EnsParamFlags flags, gboolean *out,
                         EnsInvalid *invalid);
gboolean ens_param_object (JsonObject *params, const char *field, EnsParamFlags flags, JsonObject **out,
                           EnsInvalid *invalid);
gboolean ens_param_array (JsonObject *params, const char *field, EnsParamFlags flags, JsonArray **out,
                          EnsInvalid *invalid);
/* An array of strings (each non-empty with ENS_PARAM_NON_EMPTY). */
gboolean ens_param_strings (JsonObject *params, const char *field, EnsParamFlags flags, JsonArray **out,
                            EnsInvalid *invalid);

/* Fills @invalid for a check of the caller's own; returns FALSE, so that
 * `return ens_invalid_set (...)` reads as the failing check it is. */
gboolean ens_invalid_set (EnsInvalid *invalid, const char *field, const char *expected_format, ...)
  G_GNUC_PRINTF (3, 4);
/* (transfer full) "FIELD must be EXPECTED". */
char *ens_invalid_message (const EnsInvalid *invalid);
/* (transfer full) the error details {field, expected, fields:[{field,
 * expected}]}: the single field, and the list every HTTP dialect answers
 * its 422 with. */
JsonNode *ens_invalid_details (const EnsInvalid *invalid);

G_END_DECLS
