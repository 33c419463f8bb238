/* ens-tool-loop.h — the tool loop (ens-tool-loop.c): a completion whose
 * model may call tools, each tool an action of a bus agent.  The model's
 * tool calls go to the agents as requests (all of one turn at once), their
 * answers go back to the model as tool messages, and the model is asked
 * again, until it answers without calling a tool.  Bounded by a step limit,
 * a deadline per tool call and the budget (every turn is a completion,
 * reserved and settled like any other); a tool that fails, times out or
 * does not exist is an error message to the model.
 *
 * What the caller hears goes through EnsCompletionHooks, under the loop's
 * id (the id of its first completion):
 *   chunk            each turn's text as it streams
 *   event            tool_call_start  {step, id, name, tool, agent, action, arguments}
 *                    tool_call_result {step, id, name, tool, agent, action, arguments,
 *                                      result | error {code, message}, is_error, duration_ms}
 *                    turn_start       {step, tool_calls}: the model is asked again
 *   done             the last turn's result with steps, tool_calls (how many
 *                    were made) and usage over every turn; or the error, e.g.
 *                    TOOL_STEP_LIMIT when the model still calls tools after
 *                    max_steps turns of tool calls. */
#pragma once

#include "ens-completion.h"
#include "ens-requests.h"

G_BEGIN_DECLS

typedef struct _EnsToolLoops EnsToolLoops;

#define ENS_TOOL_LOOP_STEP_LIMIT "TOOL_STEP_LIMIT"
#define ENS_TOOL_LOOP_DEFAULT_STEPS 8
#define ENS_TOOL_LOOP_MAX_STEPS 100

EnsToolLoops *ens_tool_loops_new (EnsCompletions *completions, EnsRequests *requests, EnsAgents *agents);
/* Ends every loop without telling anyone (the daemon is going). */
void ens_tool_loops_free (EnsToolLoops *loops);

/* Reads and checks the loop's parameters in @p: tools (a non-empty list of
 * "AGENT.ACTION" or {agent, action, description?, input_schema?}),
 * max_steps (1-100), tool_timeout_ms (1-3600000).  Returns (transfer full)
 * {tools, max_steps, tool_timeout_ms} for ens_tool_loop_start(), NULL when
 * @p names no tools; *err (transfer full) is set when a field is wrong. */
JsonObject *ens_tool_loop_read (EnsMessage *request, JsonObject *p, EnsMessage **err);

/* Starts a loop: @cp (transfer none) are the completion's parameters
 * (messages, model, ...), @loop_params what ens_tool_loop_read() returned.
 * Returns (transfer none) the loop's id, or NULL with *answer (transfer
 * full) the error that refused its first completion. */
const char *ens_tool_loop_start (EnsToolLoops *loops, EnsMessage *request, JsonObject *cp, JsonObject *loop_params,
                                 const EnsCompletionHooks *hooks, gpointer hooks_data, EnsMessage **answer);
/* Cancels the loop @id: done (CANCELLED) follows.  FALSE when no loop has
 * that id. */
gboolean ens_tool_loops_cancel (EnsToolLoops *loops, const char *id);

G_END_DECLS
