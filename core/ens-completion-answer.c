/* ens-completion-answer.c — a completion's ack and result, as trees and as
 * the same text written straight (see the header).  The text writers
 * follow the tree builders member for member, order included (a member
 * the core sets over one of the provider's keeps the provider's place, as
 * json_object_set_member() keeps it); test-completion-answer holds the two
 * to the same bytes.  And the partial answer of a completion that failed
 * after its first chunk. */
#include "ens-completion-answer.h"
#include "ens-json.h"

#include <string.h>

/* ---------------------------------------------------------------- the ack */

/* What the ack copies of the decision, in this order. */
static const char *const decision_members[] = { "policy", "estimated_cost", "confidence", "ranking", "scores" };

JsonNode *
ens_completion_ack_node (const EnsCompletionAck *ack)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);

  json_object_set_string_member (obj, "request_id", ack->request_id);
  json_object_set_string_member (obj, "status", "queued");
  json_object_set_int_member (obj, "queue_position", ack->queue_position);
  json_object_set_string_member (obj, "provider", ack->provider);
  if (ack->model)
    json_object_set_string_member (obj, "model", ack->model);
  json_object_set_string_member (obj, "reasoning", ack->reasoning ? ack->reasoning : "");
  /* The rest of the decision, as route answers it: why this backend (its
   * nodes shared: the decision is the core's, and read only). */
  for (guint i = 0; i < G_N_ELEMENTS (decision_members); i++)
    {
      JsonNode *member = json_object_get_member (ack->decision, decision_members[i]);
      if (member)
        json_object_set_member (obj, decision_members[i], json_node_ref (member));
    }
  json_object_set_member (obj, "estimated_time", json_node_new (JSON_NODE_NULL));
  return node;
}

static void
write_name (GString *out, const char *name, gboolean *first)
{
  if (!*first)
    g_string_append_c (out, ',');
  *first = FALSE;
  ens_json_write_string (out, name);
  g_string_append_c (out, ':');
}

/* The same for a name of ours, which needs no escaping. */
static void
write_our_name (GString *out, const char *name, gboolean *first)
{
  if (!*first)
    g_string_append_c (out, ',');
  *first = FALSE;
  g_string_append_c (out, '"');
  g_string_append (out, name);
  g_string_append (out, "\":");
}

void
ens_completion_ack_write (GString *out, const EnsCompletionAck *ack)
{
  gboolean first = FALSE; /* (request_id comes first) */

  g_string_append (out, "{\"request_id\":");
  ens_json_write_string (out, ack->request_id);
  g_string_append (out, ",\"status\":\"queued\",\"queue_position\":");
  ens_json_write_uint (out, ack->queue_position);
  g_string_append (out, ",\"provider\":");
  ens_json_write_string (out, ack->provider);
  if (ack->model)
    {
      g_string_append (out, ",\"model\":");
      ens_json_write_string (out, ack->model);
    }
  write_our_name (out, "reasoning", &first);
  ens_json_write_string (out, ack->reasoning ? ack->reasoning : "");
  for (guint i = 0; i < G_N_ELEMENTS (decision_members); i++)
    {
      JsonNode *member = json_object_get_member (ack->decision, decision_members[i]);
      if (member)
        {
          write_our_name (out, decision_members[i], &first);
          ens_json_write (out, member);
        }
    }
  g_string_append (out, ",\"estimated_time\":null}");
}

/* ---------------------------------------------------------------- the result */

/* What the core sets in a result, in the order it sets them. */
enum { R_RESPONSE, R_PROVIDER, R_PLUGIN, R_MODEL, R_COST, R_DURATION, R_ATTEMPTS, R_TIMINGS, R_SESSION, R_N };
static const char *const result_members[R_N] = { "response", "provider",    "provider_plugin", "model",     "cost",
                                                 "duration_ms", "attempts", "timings",         "session_id" };

static gboolean
has_model (JsonObject *in)
{
  const char *model = in ? ens_json_get_string (in, "model") : NULL;
  return model != NULL && model[0] != '\0';
}

/* Whether the core sets member @k of a result over @in. */
static gboolean
core_sets (JsonObject *in, const EnsCompletionResult *r, int k)
{
  switch (k)
    {
    case R_RESPONSE: return r->response != NULL;
    case R_MODEL: return r->model != NULL && !has_model (in);
    default: return TRUE;
    }
}

static JsonNode *
timings_node (const EnsCompletionResult *r)
{
  JsonObject *t;
  JsonNode *node = ens_json_object_node (&t);

  /* Where the time went: waiting in the daemon, and in the provider. */
  json_object_set_double_member (t, "received_to_start_ms", r->received_to_start_ms);
  if (r->has_first_chunk)
    json_object_set_double_member (t, "provider_first_chunk_ms", r->provider_first_chunk_ms);
  json_object_set_double_member (t, "provider_ms", r->provider_ms);
  return node;
}

JsonNode *
ens_completion_result_node (JsonObject *in, const EnsCompletionResult *r)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);

  if (in)
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;
      json_object_iter_init (&iter, in);
      while (json_object_iter_next (&iter, &name, &member))
        json_object_set_member (obj, name, json_node_copy (member));
    }
  if (core_sets (in, r, R_RESPONSE))
    json_object_set_string_member (obj, "response", r->response);
  json_object_set_string_member (obj, "provider", r->provider);
  json_object_set_string_member (obj, "provider_plugin", r->provider_plugin);
  /* The model that answered, as the upstream says; else as it was asked. */
  if (core_sets (in, r, R_MODEL))
    json_object_set_string_member (obj, "model", r->model);
  json_object_set_double_member (obj, "cost", r->cost);
  json_object_set_int_member (obj, "duration_ms", r->duration_ms);
  json_object_set_int_member (obj, "attempts", r->attempts);
  json_object_set_member (obj, "timings", timings_node (r));
  if (r->session_id)
    json_object_set_string_member (obj, "session_id", r->session_id);
  else
    json_object_set_member (obj, "session_id", json_node_new (JSON_NODE_NULL));
  return node;
}

static void
write_core_member (GString *out, const EnsCompletionResult *r, int k)
{
  switch (k)
    {
    case R_RESPONSE: ens_json_write_string (out, r->response); break;
    case R_PROVIDER: ens_json_write_string (out, r->provider); break;
    case R_PLUGIN: ens_json_write_string (out, r->provider_plugin); break;
    case R_MODEL: ens_json_write_string (out, r->model); break;
    case R_COST: ens_json_write_double (out, r->cost); break;
    case R_DURATION: ens_json_write_int (out, r->duration_ms); break;
    case R_ATTEMPTS: ens_json_write_int (out, r->attempts); break;
    case R_TIMINGS:
      g_string_append (out, "{\"received_to_start_ms\":");
      ens_json_write_double (out, r->received_to_start_ms);
      if (r->has_first_chunk)
        {
          g_string_append (out, ",\"provider_first_chunk_ms\":");
          ens_json_write_double (out, r->provider_first_chunk_ms);
        }
      g_string_append (out, ",\"provider_ms\":");
      ens_json_write_double (out, r->provider_ms);
      g_string_append_c (out, '}');
      break;
    case R_SESSION:
    default:
      if (r->session_id)
        ens_json_write_string (out, r->session_id);
      else
        g_string_append (out, "null");
    }
}

static int
core_member_index (const char *name)
{
  for (int k = 0; k < R_N; k++)
    if (strcmp (name, result_members[k]) == 0)
      return k;
  return -1;
}

void
ens_completion_result_write (GString *out, JsonObject *in, const EnsCompletionResult *r)
{
  gboolean first = TRUE, written[R_N] = { FALSE };

  g_string_append_c (out, '{');
  if (in)
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;
      json_object_iter_init (&iter, in);
      while (json_object_iter_next (&iter, &name, &member))
        {
          int k = core_member_index (name);

          write_name (out, name, &first);
          if (k >= 0 && core_sets (in, r, k))
            {
              write_core_member (out, r, k);
              written[k] = TRUE;
            }
          else
            ens_json_write (out, member);
        }
    }
  for (int k = 0; k < R_N; k++)
    if (!written[k] && core_sets (in, r, k))
      {
        write_our_name (out, result_members[k], &first);
        write_core_member (out, r, k);
      }
  g_string_append_c (out, '}');
}

/* ---------------------------------------------------------------- a failure's partial answer */

JsonNode *
ens_completion_partial_node (const char *text, gsize len, double estimate_in, const char *provider,
                             const char *model)
{
  JsonObject *obj, *usage = json_object_new ();
  JsonNode *node = ens_json_object_node (&obj);

  json_object_set_string_member (obj, "response", text);
  json_object_set_int_member (usage, "input_tokens", (gint64) estimate_in);
  json_object_set_int_member (usage, "output_tokens", (gint64) ((g_utf8_strlen (text, (gssize) len) + 3) / 4));
  json_object_set_boolean_member (usage, "estimated", TRUE);
  json_object_set_object_member (obj, "usage", usage);
  if (provider)
    json_object_set_string_member (obj, "provider", provider);
  if (model)
    json_object_set_string_member (obj, "model", model);
  return node;
}
