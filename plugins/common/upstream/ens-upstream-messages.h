/* ens-upstream-messages.h — the core's neutral tool-loop messages in each
 * upstream's own form.  The tool loop adds to a conversation
 *   {role: "assistant", content, tool_calls: [{id, name, arguments (object)}]}
 *   {role: "tool", tool_call_id, name, content (text), is_error?}
 * which Chat Completions and the Messages API spell differently. */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Appends @m (transfer none) to @out as compact JSON text, in the form
 * Chat Completions takes: tool calls as {id, type: "function", function:
 * {name, arguments (text)}}, a tool message as {role: "tool", tool_call_id,
 * content}; any other message written as it is. */
void ens_upstream_openai_write_message (GString *out, JsonNode *m);

/* Appends @m (transfer none) to @out (Messages API messages) when it is
 * one of the tool loop's: an assistant message with tool_calls becomes
 * content blocks (text, then tool_use {id, name, input}); a tool message
 * becomes a tool_result block {tool_use_id, content, is_error?} of a user
 * message, one user message for the results that follow each other.
 * FALSE (nothing appended) for any other message. */
gboolean ens_upstream_anthropic_tool_message (JsonArray *out, JsonObject *m);

G_END_DECLS
