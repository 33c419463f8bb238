/* ens-tool-loop.c — see ens-tool-loop.h.
 *
 * Tools reach the model under names every provider accepts
 * ([A-Za-z0-9_-], at most 64): "AGENT.ACTION" with each other character
 * made '_' (echo.say -> echo_say), a suffix where two would collide.  The
 * conversation grows by the core's neutral form, which each provider
 * writes in its own: an assistant message {role: "assistant", content,
 * tool_calls: [{id, name, arguments}]} and one {role: "tool",
 * tool_call_id, name, content, is_error?} per call. */
#include "ens-tool-loop.h"
#include "ens-completion-params.h"
#include "ens-json.h"
#include "ens-message-private.h"
#include "ens-verbs.h"

#include <string.h>

#define TOOL_NAME_MAX 64
#define TOOL_ANSWER_MAX (64 * 1024) /* a tool message past this is cut, and says so */

struct _EnsToolLoops {
  EnsCompletions *completions;
  EnsRequests *requests;
  EnsAgents *agents;
  GHashTable *loops; /* id -> EnsToolLoop */
};

typedef struct {
  char *name; /* as the model sees it */
  char *agent;
  char *action;
} Tool;

typedef struct _EnsToolLoop EnsToolLoop;

typedef struct {
  EnsToolLoop *loop;
  char *id;
  char *name;
  Tool *tool; /* NULL: the model named a tool it was not given */
  JsonNode *arguments;
  gint64 started_us;
  char *content; /* the tool message, once answered */
  gboolean is_error, answered;
} Call;

struct _EnsToolLoop {
  EnsToolLoops *owner;
  char *id;      /* the first completion's id */
  char *current; /* the running completion's id, NULL between turns */
  EnsMessage *request;
  JsonObject *cp;     /* the completion's parameters; cp.messages grows */
  GPtrArray *tools;   /* Tool* */
  GPtrArray *calls;   /* Call* of the step waiting for its tools */
  guint step, max_steps, tool_timeout_ms, outstanding, calls_made;
  double input_tokens, output_tokens, cost;
  const EnsCompletionHooks *hooks;
  gpointer hooks_data;
  gboolean finished; /* done was told; freed once no tool call is out */
};

static void
tool_free (Tool *t)
{
  g_free (t->name);
  g_free (t->agent);
  g_free (t->action);
  g_free (t);
}

static void
call_free (Call *c)
{
  g_free (c->id);
  g_free (c->name);
  g_clear_pointer (&c->arguments, json_node_unref);
  g_free (c->content);
  g_free (c);
}

static void
loop_free (EnsToolLoop *loop)
{
  g_free (loop->id);
  g_free (loop->current);
  ens_message_unref (loop->request);
  json_object_unref (loop->cp);
  g_ptr_array_unref (loop->tools);
  if (loop->calls)
    g_ptr_array_unref (loop->calls);
  g_free (loop);
}

EnsToolLoops *
ens_tool_loops_new (EnsCompletions *completions, EnsRequests *requests, EnsAgents *agents)
{
  EnsToolLoops *loops = g_new0 (EnsToolLoops, 1);

  loops->completions = completions;
  loops->requests = requests;
  loops->agents = agents;
  loops->loops = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) loop_free);
  return loops;
}

void
ens_tool_loops_free (EnsToolLoops *loops)
{
  GHashTableIter iter;
  gpointer value;

  if (loops == NULL)
    return;
  /* Whoever waits hears the end (what they hold is freed with it). */
  g_hash_table_iter_init (&iter, loops->loops);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EnsToolLoop *loop = value;
      if (!loop->finished)
        {
          loop->finished = TRUE;
          loop->hooks->done (loop->hooks_data, loop->id, NULL, ENS_COMPLETION_ERR_CANCELLED, "the daemon stopped");
        }
    }
  g_hash_table_unref (loops->loops);
  g_free (loops);
}

/* ---------------------------------------------------------------- parameters */

/* "AGENT.ACTION": the longest registered agent name before a '.', else the
 * text up to the first '.'. */
static gboolean
split_tool (EnsAgents *agents, const char *text, char **agent, char **action)
{
  const char *best = NULL;

  for (const char *dot = strchr (text, '.'); dot; dot = strchr (dot + 1, '.'))
    {
      g_autofree char *name = g_strndup (text, (gsize) (dot - text));
      if (dot[1] && agents && ens_agents_lookup (agents, name))
        best = dot;
    }
  if (best == NULL)
    best = strchr (text, '.');
  if (best == NULL || best == text || best[1] == '\0')
    return FALSE;
  *agent = g_strndup (text, (gsize) (best - text));
  *action = g_strdup (best + 1);
  return TRUE;
}

JsonObject *
ens_tool_loop_read (EnsMessage *request, JsonObject *p, EnsMessage **err)
{
  JsonNode *tools = p ? json_object_get_member (p, "tools") : NULL;
  double max_steps = ENS_TOOL_LOOP_DEFAULT_STEPS, timeout_ms = 0;
  JsonArray *in;
  JsonObject *out;

  *err = NULL;
  if (tools == NULL || JSON_NODE_HOLDS_NULL (tools))
    return NULL;
  in = JSON_NODE_HOLDS_ARRAY (tools) ? json_node_get_array (tools) : NULL;
  if (in == NULL || json_array_get_length (in) == 0 || json_array_get_length (in) > 128)
    {
      *err = ens_message_new_invalid (request, "tools", "a list of 1 to 128 tools: \"AGENT.ACTION\" or {agent, action}");
      return NULL;
    }
  for (guint i = 0; i < json_array_get_length (in); i++)
    {
      JsonNode *el = json_array_get_element (in, i);
      JsonObject *o = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
      gboolean ok;

      if (o)
        {
          JsonNode *schema = json_object_get_member (o, "input_schema");
          ok = ens_json_get_string (o, "agent") && ens_json_get_string (o, "action") &&
               ens_name_valid (ens_json_get_string (o, "agent")) && *ens_json_get_string (o, "action") &&
               (!json_object_has_member (o, "description") || ens_json_get_string (o, "description")) &&
               (schema == NULL || JSON_NODE_HOLDS_OBJECT (schema));
        }
      else
        {
          const char *s = JSON_NODE_HOLDS_VALUE (el) && json_node_get_value_type (el) == G_TYPE_STRING
                            ? json_node_get_string (el) : NULL;
          g_autofree char *agent = NULL, *action = NULL;
          ok = s && split_tool (NULL, s, &agent, &action) && ens_name_valid (agent);
        }
      if (!ok)
        {
          g_autofree char *field = g_strdup_printf ("tools[%u]", i);
          *err = ens_message_new_invalid (request, field,
                                          "\"AGENT.ACTION\" or {agent, action, description?, input_schema? (an object)}");
          return NULL;
        }
    }
  if (!ens_completion_read_number (p, "max_steps", 1, ENS_TOOL_LOOP_MAX_STEPS, &max_steps) ||
      max_steps != (guint) max_steps)
    {
      *err = ens_message_new_invalid (request, "max_steps", "an integer from 1 to 100");
      return NULL;
    }
  if (!ens_completion_read_number (p, "tool_timeout_ms", 1, 3.6e6, &timeout_ms))
    {
      *err = ens_message_new_invalid (request, "tool_timeout_ms", "a number of milliseconds from 1 to 3600000");
      return NULL;
    }
  out = json_object_new ();
  json_object_set_member (out, "tools", json_node_copy (tools));
  json_object_set_int_member (out, "max_steps", (gint64) max_steps);
  json_object_set_int_member (out, "tool_timeout_ms", (gint64) timeout_ms);
  return out;
}

/* A name the model may use: [A-Za-z0-9_-]{1,64}, unique in @tools. */
static char *
model_name (GPtrArray *tools, const char *agent, const char *action)
{
  g_autofree char *joined = g_strconcat (agent, ".", action, NULL);
  GString *name = g_string_new (NULL);
  gsize base;

  for (const char *c = joined; *c && name->len < TOOL_NAME_MAX - 4; c++)
    g_string_append_c (name, g_ascii_isalnum (*c) || *c == '_' || *c == '-' ? *c : '_');
  base = name->len;
  for (guint n = 2;; n++)
    {
      gboolean taken = FALSE;
      for (guint i = 0; i < tools->len && !taken; i++)
        taken = g_str_equal (((Tool *) g_ptr_array_index (tools, i))->name, name->str);
      if (!taken)
        break;
      g_string_truncate (name, base);
      g_string_append_printf (name, "_%u", n);
    }
  return g_string_free (name, FALSE);
}

/* The tools as providers take them ({name, description, input_schema}),
 * and the loop's own table of them. */
static JsonNode *
tools_for_model (EnsToolLoops *loops, JsonArray *spec, GPtrArray *tools)
{
  JsonArray *out = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < json_array_get_length (spec); i++)
    {
      JsonNode *el = json_array_get_element (spec, i);
      JsonObject *o = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
      Tool *t = g_new0 (Tool, 1);
      JsonObject *desc = json_object_new ();
      const char *description = o ? ens_json_get_string (o, "description") : NULL;
      JsonNode *schema = o ? json_object_get_member (o, "input_schema") : NULL;
      EnsAgentTool *declared;
      EnsAgent *agent;

      if (o)
        {
          t->agent = g_strdup (ens_json_get_string (o, "agent"));
          t->action = g_strdup (ens_json_get_string (o, "action"));
        }
      else
        split_tool (loops->agents, json_node_get_string (el), &t->agent, &t->action);
      t->name = model_name (tools, t->agent, t->action);
      g_ptr_array_add (tools, t);
      agent = ens_agents_lookup (loops->agents, t->agent);
      /* What the task does not say, the agent's own declaration does. */
      declared = agent && agent->actions && t->action ? ens_agent_tools_find (agent->actions, t->action) : NULL;
      if (!description && declared)
        description = declared->description;
      if (!schema && declared && declared->schema)
        schema = ens_schema_get_node (declared->schema);
      json_object_set_string_member (desc, "name", t->name);
      if (description)
        json_object_set_string_member (desc, "description", description);
      else
        {
          g_autofree char *text = g_strdup_printf ("Action \"%s\" of the agent \"%s\"%s%s", t->action, t->agent,
                                                   agent && agent->description ? ": " : "",
                                                   agent && agent->description ? agent->description : "");
          json_object_set_string_member (desc, "description", text);
        }
      if (schema)
        json_object_set_member (desc, "input_schema", json_node_copy (schema));
      else
        {
          JsonObject *any = json_object_new ();
          json_object_set_string_member (any, "type", "object");
          json_object_set_object_member (desc, "input_schema", any);
        }
      json_array_add_object_element (out, desc);
    }
  json_node_take_array (node, out);
  return node;
}

/* ---------------------------------------------------------------- the end */

static void
loop_forget (EnsToolLoop *loop)
{
  if (loop->outstanding == 0)
    g_hash_table_remove (loop->owner->loops, loop->id);
}

static void
add_totals (EnsToolLoop *loop, JsonObject *r)
{
  JsonNode *u = json_object_get_member (r, "usage");
  JsonObject *usage = u && JSON_NODE_HOLDS_OBJECT (u) ? json_node_get_object (u) : NULL;

  loop->input_tokens += ens_info_double (usage, "input_tokens", 0);
  loop->output_tokens += ens_info_double (usage, "output_tokens", 0);
  loop->cost += ens_info_double (r, "cost", 0);
}

/* Tells the caller the end: the last turn's @last (transfer none) with the
 * loop's totals, or the error. */
static void
finish (EnsToolLoop *loop, JsonNode *last, const char *code, const char *message)
{
  g_autoptr (JsonNode) result = NULL;

  if (loop->finished)
    return;
  loop->finished = TRUE;
  g_clear_pointer (&loop->current, g_free);
  if (last)
    {
      JsonObject *r, *usage = json_object_new ();

      result = json_node_copy (last);
      r = json_node_get_object (result);
      json_object_set_int_member (usage, "input_tokens", (gint64) loop->input_tokens);
      json_object_set_int_member (usage, "output_tokens", (gint64) loop->output_tokens);
      json_object_set_object_member (r, "usage", usage);
      json_object_set_double_member (r, "cost", loop->cost);
      json_object_set_int_member (r, "steps", loop->step);
      json_object_set_int_member (r, "tool_calls", loop->calls_made);
    }
  loop->hooks->done (loop->hooks_data, loop->id, result, code, message);
  loop_forget (loop);
}

/* ---------------------------------------------------------------- turns */

static const EnsCompletionHooks loop_hooks;

/* Asks the model (again): a completion with the conversation so far.
 * FALSE with *@answer set when it is refused. */
static gboolean
ask (EnsToolLoop *loop, EnsMessage **answer)
{
  EnsCompletion *c;

  *answer = NULL;
  c = ens_completions_submit (loop->owner->completions, loop->request, loop->cp, NULL, NULL, &loop_hooks, loop,
                              answer);
  if (c == NULL)
    return FALSE;
  g_clear_pointer (answer, ens_message_unref);
  g_free (loop->current);
  loop->current = g_strdup (ens_completion_id (c));
  return TRUE;
}

static JsonObject *
call_event (EnsToolLoop *loop, Call *c)
{
  JsonObject *e = json_object_new ();

  json_object_set_int_member (e, "step", loop->step);
  json_object_set_string_member (e, "id", c->id);
  json_object_set_string_member (e, "name", c->name);
  if (c->tool)
    {
      g_autofree char *tool = g_strconcat (c->tool->agent, ".", c->tool->action, NULL);
      json_object_set_string_member (e, "tool", tool);
      json_object_set_string_member (e, "agent", c->tool->agent);
      json_object_set_string_member (e, "action", c->tool->action);
    }
  else
    json_object_set_null_member (e, "tool");
  json_object_set_member (e, "arguments", c->arguments ? json_node_copy (c->arguments) : json_node_new (JSON_NODE_NULL));
  return e;
}

static void
emit (EnsToolLoop *loop, const char *type, JsonObject *payload)
{
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  json_node_take_object (node, payload);
  if (loop->hooks->event)
    loop->hooks->event (loop->hooks_data, loop->id, type, node);
}

/* Every call of the step is answered: the tool messages, in the model's
 * order, then the next turn. */
static void
step_answered (EnsToolLoop *loop)
{
  JsonArray *messages = json_object_get_array_member (loop->cp, "messages");
  g_autoptr (EnsMessage) refused = NULL;
  JsonObject *turn;

  for (guint i = 0; i < loop->calls->len; i++)
    {
      Call *c = g_ptr_array_index (loop->calls, i);
      JsonObject *m = json_object_new ();

      json_object_set_string_member (m, "role", "tool");
      json_object_set_string_member (m, "tool_call_id", c->id);
      json_object_set_string_member (m, "name", c->name);
      json_object_set_string_member (m, "content", c->content);
      if (c->is_error)
        json_object_set_boolean_member (m, "is_error", TRUE);
      json_array_add_object_element (messages, m);
    }
  turn = json_object_new ();
  json_object_set_int_member (turn, "step", loop->step);
  json_object_set_int_member (turn, "tool_calls", loop->calls->len);
  g_clear_pointer (&loop->calls, g_ptr_array_unref);
  emit (loop, "turn_start", turn);
  if (!ask (loop, &refused))
    finish (loop, NULL, refused->error_code, refused->error_message);
}

/* A call's answer: @data (transfer none) or the error. */
static void
call_answered (Call *c, JsonNode *data, const char *code, const char *message)
{
  EnsToolLoop *loop = c->loop;
  JsonObject *e = call_event (loop, c);
  gint64 ms = (g_get_monotonic_time () - c->started_us) / 1000;

  c->answered = TRUE;
  c->is_error = code != NULL;
  if (code)
    {
      JsonObject *err = json_object_new ();
      g_autoptr (JsonNode) wrap = json_node_new (JSON_NODE_OBJECT);
      JsonObject *inner = json_object_new ();

      json_object_set_string_member (err, "code", code);
      json_object_set_string_member (err, "message", message ? message : code);
      json_object_set_object_member (e, "error", err);
      json_object_set_object_member (inner, "error", json_object_ref (err));
      json_node_take_object (wrap, inner);
      c->content = ens_json_to_string (wrap);
    }
  else
    {
      c->content = data ? ens_json_to_string (data) : g_strdup ("null");
      json_object_set_member (e, "result", data ? json_node_copy (data) : json_node_new (JSON_NODE_NULL));
    }
  if (strlen (c->content) > TOOL_ANSWER_MAX)
    {
      g_autofree char *whole = c->content;
      gsize cut = TOOL_ANSWER_MAX;
      while (cut > 0 && (whole[cut] & 0xc0) == 0x80)
        cut--; /* not inside a UTF-8 sequence */
      c->content = g_strdup_printf ("%.*s ... [cut: the answer had %zu bytes]", (int) cut, whole, strlen (whole));
    }
  json_object_set_boolean_member (e, "is_error", c->is_error);
  json_object_set_int_member (e, "duration_ms", ms);
  emit (loop, "tool_call_result", e);
  if (--loop->outstanding == 0 && !loop->finished)
    step_answered (loop);
}

static void
on_tool_reply (EnsMessage *reply, gpointer user_data)
{
  Call *c = user_data;
  EnsToolLoop *loop = c->loop;

  if (loop->finished)
    {
      loop->outstanding--;
      loop_forget (loop);
      return;
    }
  if (reply->kind == ENS_MESSAGE_REPLY)
    call_answered (c, ens_message_get_data (reply), NULL, NULL);
  else
    call_answered (c, NULL, reply->error_code ? reply->error_code : ENS_ERR_INTERNAL, reply->error_message);
}

/* Runs the model's @tool_calls (transfer none): each one now, in parallel. */
static void
run_calls (EnsToolLoop *loop, JsonObject *r, JsonArray *tool_calls)
{
  JsonArray *messages = json_object_get_array_member (loop->cp, "messages");
  JsonObject *assistant = json_object_new ();
  JsonArray *asked = json_array_new ();
  const char *text = ens_json_get_string (r, "response");

  g_autoptr (GPtrArray) calls = g_ptr_array_new_with_free_func ((GDestroyNotify) call_free);

  loop->step++;
  loop->calls = g_ptr_array_ref (calls); /* the last answer clears it, maybe in here */
  for (guint i = 0; i < json_array_get_length (tool_calls); i++)
    {
      JsonNode *el = json_array_get_element (tool_calls, i);
      JsonObject *tc = JSON_NODE_HOLDS_OBJECT (el) ? json_node_get_object (el) : NULL;
      JsonNode *args = tc ? json_object_get_member (tc, "arguments") : NULL;
      const char *id = tc ? ens_json_get_string (tc, "id") : NULL;
      Call *c = g_new0 (Call, 1);
      JsonObject *a = json_object_new ();

      c->loop = loop;
      c->id = id && *id ? g_strdup (id) : g_strdup_printf ("call_%u_%u", loop->step, i);
      c->name = g_strdup (tc && ens_json_get_string (tc, "name") ? ens_json_get_string (tc, "name") : "");
      c->arguments = args ? json_node_copy (args) : NULL;
      for (guint k = 0; k < loop->tools->len && c->tool == NULL; k++)
        if (g_str_equal (((Tool *) g_ptr_array_index (loop->tools, k))->name, c->name))
          c->tool = g_ptr_array_index (loop->tools, k);
      g_ptr_array_add (loop->calls, c);
      json_object_set_string_member (a, "id", c->id);
      json_object_set_string_member (a, "name", c->name);
      json_object_set_member (a, "arguments", args ? json_node_copy (args) : ens_json_object_node (NULL));
      json_array_add_object_element (asked, a);
    }
  json_object_set_string_member (assistant, "role", "assistant");
  json_object_set_string_member (assistant, "content", text ? text : "");
  json_object_set_array_member (assistant, "tool_calls", asked);
  json_array_add_object_element (messages, assistant);

  /* All start events first, then the calls: an answer that comes at once
   * never overtakes another call's start. */
  loop->outstanding = calls->len + 1; /* + 1: this function, so the loop outlives it */
  loop->calls_made += calls->len;
  for (guint i = 0; i < calls->len; i++)
    emit (loop, "tool_call_start", call_event (loop, g_ptr_array_index (calls, i)));
  for (guint i = 0; i < calls->len; i++)
    {
      Call *c = g_ptr_array_index (calls, i);

      c->started_us = g_get_monotonic_time ();
      if (c->tool == NULL)
        {
          g_autofree char *text_err = g_strdup_printf ("there is no tool named \"%s\"", c->name);
          call_answered (c, NULL, "UNKNOWN_TOOL", text_err);
        }
      else if (c->arguments == NULL || !JSON_NODE_HOLDS_OBJECT (c->arguments))
        call_answered (c, NULL, ENS_ERR_INVALID_PARAMETERS, "the arguments of a tool call must be a JSON object");
      else
        {
          EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
          g_autoptr (EnsMessage) msg = NULL;

          init.action = c->tool->action;
          init.agent = c->tool->agent;
          init.from = "ensembled";
          init.data = c->arguments;
          init.timeout_ms = loop->tool_timeout_ms;
          msg = ens_message_new (&init);
          ens_requests_forward (loop->owner->requests, msg, NULL, NULL, on_tool_reply, c);
        }
    }
  if (--loop->outstanding == 0)
    {
      if (loop->finished)
        loop_forget (loop);
      else
        step_answered (loop);
    }
}

/* ---------------------------------------------------------------- completion hooks */

static void
hook_chunk (gpointer data, const char *request_id, const char *text)
{
  EnsToolLoop *loop = data;

  if (loop->hooks->chunk && g_strcmp0 (request_id, loop->current) == 0)
    loop->hooks->chunk (loop->hooks_data, loop->id, text);
}

static void
hook_event (gpointer data, const char *request_id, const char *type, JsonNode *payload)
{
  EnsToolLoop *loop = data;

  /* The provider's own tool_call_start says less than the loop's. */
  if (g_strcmp0 (type, "tool_call_start") == 0 || g_strcmp0 (request_id, loop->current) != 0)
    return;
  if (loop->hooks->event)
    loop->hooks->event (loop->hooks_data, loop->id, type, payload);
}

static void
hook_done (gpointer data, const char *request_id, JsonNode *result, const char *code, const char *message)
{
  EnsToolLoop *loop = data;
  JsonObject *r = result && JSON_NODE_HOLDS_OBJECT (result) ? json_node_get_object (result) : NULL;
  JsonNode *calls = r ? json_object_get_member (r, "tool_calls") : NULL;
  JsonArray *tool_calls = calls && JSON_NODE_HOLDS_ARRAY (calls) ? json_node_get_array (calls) : NULL;

  if (loop->finished || g_strcmp0 (request_id, loop->current) != 0)
    return;
  g_clear_pointer (&loop->current, g_free);
  if (r == NULL)
    {
      finish (loop, NULL, code, message);
      return;
    }
  add_totals (loop, r);
  if (tool_calls == NULL || json_array_get_length (tool_calls) == 0)
    {
      finish (loop, result, NULL, NULL);
      return;
    }
  if (loop->step >= loop->max_steps)
    {
      g_autofree char *text = g_strdup_printf ("the tool loop stopped at its step limit: the model still called "
                                               "tools after %u steps (max_steps)", loop->step);
      finish (loop, NULL, ENS_TOOL_LOOP_STEP_LIMIT, text);
      return;
    }
  run_calls (loop, r, tool_calls);
}

static const EnsCompletionHooks loop_hooks = { hook_chunk, hook_event, hook_done };

/* ---------------------------------------------------------------- start, cancel */

const char *
ens_tool_loop_start (EnsToolLoops *loops, EnsMessage *request, JsonObject *cp, JsonObject *loop_params,
                     const EnsCompletionHooks *hooks, gpointer hooks_data, EnsMessage **answer)
{
  EnsToolLoop *loop = g_new0 (EnsToolLoop, 1);
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;

  loop->owner = loops;
  loop->request = ens_message_ref (request);
  loop->hooks = hooks;
  loop->hooks_data = hooks_data;
  loop->max_steps = (guint) json_object_get_int_member (loop_params, "max_steps");
  loop->tool_timeout_ms = (guint) json_object_get_int_member (loop_params, "tool_timeout_ms");
  loop->tools = g_ptr_array_new_with_free_func ((GDestroyNotify) tool_free);
  loop->cp = json_object_new ();
  json_object_iter_init (&iter, cp);
  while (json_object_iter_next (&iter, &name, &member))
    json_object_set_member (loop->cp, name, json_node_copy (member));
  json_object_set_member (loop->cp, "tools",
                          tools_for_model (loops, json_object_get_array_member (loop_params, "tools"), loop->tools));
  if (!ask (loop, answer))
    {
      loop_free (loop);
      return NULL;
    }
  loop->id = g_strdup (loop->current);
  g_hash_table_insert (loops->loops, loop->id, loop);
  return loop->id;
}

gboolean
ens_tool_loops_cancel (EnsToolLoops *loops, const char *id)
{
  EnsToolLoop *loop = id ? g_hash_table_lookup (loops->loops, id) : NULL;

  if (loop == NULL || loop->finished)
    return FALSE;
  if (loop->current)
    ens_completions_cancel_id (loops->completions, loop->current); /* its done ends the loop */
  else
    finish (loop, NULL, ENS_COMPLETION_ERR_CANCELLED, "the tool loop was cancelled while its tools ran");
  return TRUE;
}
