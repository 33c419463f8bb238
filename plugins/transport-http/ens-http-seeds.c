/* ens-http-seeds.c — what the seed systems' HTTP dialects share (see
 * ens-http-seeds.h): a route row run (its body through the row's fields in,
 * a failing field answered 422 as the row names it, the core's answer
 * through its fields out, the row's status), and answers in their shapes. */
#include "ens-http-seeds.h"

#include <string.h>

JsonObject *
ens_seed_answer_object (EnsMessage *answer)
{
  return answer->data && JSON_NODE_HOLDS_OBJECT (answer->data) ? json_node_get_object (answer->data) : NULL;
}

void
ens_seed_reply_object (EnsHttpCall *call, guint status, JsonObject *obj)
{
  g_autoptr (JsonNode) node = ens_node_take_object (obj);
  ens_http_reply_json (call, status, node);
}

char *
ens_seed_now_iso (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  return g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
}

/* A failed task (task_failed {error, code}) as an HTTP error. */
void
ens_seed_reply_task_failed (EnsHttpCall *call, JsonObject *ev, JsonNode *event_data)
{
  const char *code = ens_member_string_or (ev, "code", "TASK_FAILED");
  guint status = ens_http_status_for (code);

  ens_http_reply_error (call, status == 500 ? 502 : status, code,
                        ens_member_string_or (ev, "error", "the task failed"), event_data);
}

/* ---- a dialect's route rows */

/* Adds to @input the query parameters @fields read at the top level. */
static void
merge_query (EnsHttpCall *call, const EnsField *fields, JsonObject *input)
{
  for (const EnsField *f = fields; f && (f->from || f->to); f++)
    for (const char *p = f->from; p && *p;)
      {
        gsize n = strcspn (p, "|");
        g_autofree char *name = g_strndup (p, n);
        const char *v = strchr (name, '.') ? NULL : ens_http_query (call, name);

        if (v && *v)
          json_object_set_string_member (input, name, v);
        p += n;
        if (*p == '|')
          p++;
      }
}

const EnsDialectEntry *
ens_seed_request (EnsHttpCall *call, const EnsDialect *dialect, const char *route, JsonNode **params)
{
  JsonObject *body = ens_http_body (call), *input, *out;
  g_autoptr (JsonNode) in = NULL;
  const EnsDialectEntry *entry;
  EnsInvalid invalid;

  *params = NULL;
  if (body == NULL)
    return NULL;
  in = ens_node_new_object (&input); /* the body's members, and the query's parameters over them */
  {
    JsonObjectIter iter;
    const char *name;
    JsonNode *member;

    json_object_iter_init_ordered (&iter, body);
    while (json_object_iter_next_ordered (&iter, &name, &member))
      json_object_set_member (input, name, json_node_ref (member));
  }
  if ((entry = ens_dialect_find (dialect, route, input, NULL)) == NULL)
    {
      ens_http_reply_error (call, 404, ENS_ERR_NOT_FOUND, "no such route", NULL);
      return NULL;
    }
  merge_query (call, entry->in, input);
  entry = ens_dialect_find (dialect, route, input, NULL);
  *params = ens_node_new_object (&out);
  if (entry->in && !ens_dialect_map (entry->in, input, out, &invalid))
    {
      g_clear_pointer (params, json_node_unref);
      ens_http_reply_invalid (call, invalid.field, invalid.expected);
      return NULL;
    }
  return entry;
}

void
ens_seed_dialect_error (EnsHttpCall *call, const EnsDialectEntry *entry, EnsMessage *answer)
{
  EnsInvalid invalid;

  if (g_strcmp0 (answer->error_code, ENS_ERR_INVALID_PARAMETERS) == 0 &&
      ens_dialect_core_invalid (entry, answer->error_details, &invalid))
    ens_http_reply_invalid (call, invalid.field, invalid.expected);
  else
    ens_http_reply_error (call, ens_http_status_for (answer->error_code), answer->error_code, answer->error_message,
                          answer->error_details);
}

typedef struct {
  const EnsDialectEntry *entry;
  EnsSeedFinish finish;
  gpointer data;
} SeedRun;

static void
seed_answered (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  SeedRun *run = data;
  g_autoptr (JsonNode) out = NULL;
  guint status;

  if (answer->kind == ENS_MESSAGE_ERROR)
    {
      ens_seed_dialect_error (call, run->entry, answer);
      return;
    }
  out = ens_dialect_reshape (run->entry->out, 0, answer->data);
  if (run->finish)
    run->finish (call, json_node_get_object (out), ens_seed_answer_object (answer), run->data);
  status = run->entry->answer ? (guint) g_ascii_strtoull (run->entry->answer, NULL, 10) : 200;
  ens_http_reply_json (call, status ? status : 200, out);
}

void
ens_seed_run (EnsHttpCall *call, const EnsDialect *dialect, const char *route, EnsSeedFinish finish, gpointer data)
{
  g_autoptr (JsonNode) params = NULL;
  const EnsDialectEntry *entry = ens_seed_request (call, dialect, route, &params);
  SeedRun *run;

  if (entry == NULL)
    return;
  run = g_new0 (SeedRun, 1);
  run->entry = entry;
  run->finish = finish;
  run->data = data;
  ens_http_attach (call, "ens-seed-run", run, g_free);
  ens_http_core (call, NULL, entry->verb, entry->in ? params : NULL, 0, seed_answered, run);
}

void
ens_seed_run_route (EnsHttpCall *call, const EnsDialect *dialect)
{
  const EnsHttpRoute *route = ens_http_route (call);
  g_autofree char *name = g_strdup_printf ("%s %s", route->method, route->path);

  ens_seed_run (call, dialect, name, NULL, NULL);
}
