/* ens-tool-calls.h — tool calls assembled from an upstream answer.
 *
 * A streamed answer sends each call in pieces keyed by an index (OpenAI's
 * tool_calls[].index, Anthropic's content block index): the id and name
 * once, the arguments as text in fragments.  Calls are found by index in a
 * hash table and kept in the order they first appeared; their number is
 * capped, so a hostile stream cannot grow the set without bound. */
#pragma once

#include <json-glib/json-glib.h>

#include "ens-upstream-json.h"

G_BEGIN_DECLS

typedef struct _EnsToolCalls EnsToolCalls;

/* (transfer full) an empty set taking at most @max_calls calls; arguments
 * are parsed with @parse (NULL: ens_upstream_json_parse). */
EnsToolCalls *ens_tool_calls_new (guint max_calls, EnsUpstreamParseFunc parse);
void ens_tool_calls_free (EnsToolCalls *calls);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsToolCalls, ens_tool_calls_free)

/* Adds to call @index, creating it on first sight; @id, @name and
 * @arguments (transfer none) may be NULL.  A name may come in pieces like
 * the arguments.  *@started (may be NULL) becomes TRUE the first time the
 * call has a name, i.e. when "tool_call_start" is due.  FALSE with @error
 * (ENS_UPSTREAM_ERROR_LIMIT) when @index would be one call too many. */
gboolean ens_tool_calls_update (EnsToolCalls *calls, gint64 index, const char *id, const char *name,
                                const char *arguments, gboolean *started, GError **error);
/* (transfer full) the tool_call_start event data of call @index:
 * {index, id, name}. */
JsonNode *ens_tool_calls_start_event (EnsToolCalls *calls, gint64 index);
/* Number of calls collected. */
guint ens_tool_calls_count (EnsToolCalls *calls);
/* (transfer full) [{id, type:"function", name, arguments}], arguments
 * parsed as JSON when they parse, else the raw text. */
JsonNode *ens_tool_calls_to_json (EnsToolCalls *calls);

G_END_DECLS
