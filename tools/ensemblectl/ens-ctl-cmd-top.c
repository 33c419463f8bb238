/* ensemblectl: top — a live view of the daemon: connections, agents,
 * rates of requests, events and deliveries, completions, budget and each
 * provider backend, refreshed every --interval.  Each view compares two
 * samples of `health` (and `providers.list`) taken on one connection. */
#include "ens-ctl.h"

#include <stdio.h>
#include <unistd.h>

typedef struct
{
  JsonNode *health;
  JsonNode *providers;
  gint64 at;   /* monotonic µs */
} Sample;

static void
sample_clear (Sample *s)
{
  g_clear_pointer (&s->health, json_node_unref);
  g_clear_pointer (&s->providers, json_node_unref);
}

static gboolean
take_sample (EnsCtl *ctl, Sample *s, EnsCtlError **error)
{
  sample_clear (s);
  s->health = ens_call_again (ctl, NULL, "health", NULL, error);
  if (s->health == NULL || ens_json_node_object (s->health) == NULL)
    {
      if (s->health != NULL)
        ens_ctl_set_error (error, "PROTOCOL_ERROR", "health did not answer an object");
      return FALSE;
    }
  s->providers = ens_call_again (ctl, NULL, "providers.list", NULL, error);
  s->at = g_get_monotonic_time ();
  return s->providers != NULL;
}

/* (@path: "counters.requests") the number in @root, or 0. */
static double
number_at (JsonNode *root, const char *group, const char *name)
{
  JsonObject *obj = ens_json_node_object (root);
  double v = 0;

  if (group != NULL)
    obj = ens_json_object (obj, group);
  ens_json_number (obj, name, &v);
  return v;
}

/* Per second between two samples; a counter that went back (a restarted
 * daemon) counts from zero. */
static double
rate (const Sample *then, const Sample *now, const char *group, const char *name)
{
  double seconds = (double) (now->at - then->at) / G_USEC_PER_SEC;
  double before = number_at (then->health, group, name), after = number_at (now->health, group, name);
  double delta = after >= before ? after - before : after;

  return seconds > 0 ? delta / seconds : 0;
}

static const struct
{
  const char *label;
  const char *group;
  const char *name;
} rates[] = {
  { "requests", "counters", "requests" },
  { "events", "counters", "events_published" },
  { "deliveries", "counters", "events_delivered" },
  { "errors", "counters", "errors" },
  { "completions", "completions", "completed" },
  { "failed_completions", "completions", "failed" },
};

static void
print_json_view (const Sample *then, const Sample *now)
{
  JsonObject *h = ens_json_node_object (now->health);
  g_autoptr(JsonObject) view = json_object_new ();
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  JsonObject *r = json_object_new ();
  static const char *const copied[] = { "status", "version", "node_id", "uptime_s", "connections", "agents",
                                        "subscriptions", "pending_requests", "sessions", "active_sessions",
                                        "completions", "llm_router", NULL };
  g_autoptr(GDateTime) time = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format_iso8601 (time);
  JsonObject *pobj = ens_json_node_object (now->providers);
  JsonNode *list = pobj ? json_object_get_member (pobj, "providers") : NULL;

  json_object_set_string_member (view, "time", stamp);
  json_object_set_double_member (view, "interval_s", (double) (now->at - then->at) / G_USEC_PER_SEC);
  for (guint i = 0; copied[i]; i++)
    if (json_object_has_member (h, copied[i]))
      json_object_set_member (view, copied[i], json_node_copy (json_object_get_member (h, copied[i])));
  for (guint i = 0; i < G_N_ELEMENTS (rates); i++)
    json_object_set_double_member (r, rates[i].label, rate (then, now, rates[i].group, rates[i].name));
  json_object_set_object_member (view, "rates_per_s", r);
  json_object_set_member (view, "providers", list ? json_node_copy (list) : json_node_new (JSON_NODE_NULL));
  json_node_set_object (root, view);
  ens_print_json (root, FALSE);
}

static char *
num (double v)
{
  return ens_human_number (v);
}

static void
print_text_view (const Sample *then, const Sample *now, gboolean tty)
{
  JsonObject *h = ens_json_node_object (now->health);
  JsonObject *budget = ens_json_object (h, "llm_router");
  JsonArray *providers = ens_json_array (ens_json_node_object (now->providers), "providers");
  g_autofree char *status = ens_json_text (h, "status"), *version = ens_json_text (h, "version");
  g_autofree char *node = ens_json_text (h, "node_id");
  g_autofree char *uptime = ens_format_uptime (number_at (now->health, NULL, "uptime_s"));
  g_autoptr(GDateTime) clock = g_date_time_new_now_local ();
  g_autofree char *hms = g_date_time_format (clock, "%H:%M:%S");
  g_autofree char *req = num (rate (then, now, "counters", "requests"));
  g_autofree char *ev = num (rate (then, now, "counters", "events_published"));
  g_autofree char *del = num (rate (then, now, "counters", "events_delivered"));
  g_autofree char *err = num (rate (then, now, "counters", "errors"));
  g_autofree char *comp = num (rate (then, now, "completions", "completed"));
  g_autofree char *spent = num (number_at (now->health, "llm_router", "current_spend"));
  g_autofree char *daily = num (number_at (now->health, "llm_router", "daily_budget"));
  g_autofree char *pct = num (number_at (now->health, "llm_router", "utilization_pct"));
  static const char *const headers[] = { "BACKEND", "PROVIDER", "CALLS", "FAILURES", "LATENCY_MS", "ERROR_RATE",
                                         "COST", "STATE" };
  static const char *const members[] = { "name", "provider", "calls", "failures", "latency_ms", "error_rate",
                                         "cost" };
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);

  if (tty)
    printf ("\033[H\033[2J");
  printf ("ensembled %s, node %s: %s, up %s%*s%s\n", version ? version : "?", node ? node : "?",
          status ? status : "?", uptime, 8, "", hms);
  printf ("Connections %.0f   Agents %.0f   Subscriptions %.0f   Pending requests %.0f   Sessions %.0f (%.0f active)\n",
          number_at (now->health, NULL, "connections"), number_at (now->health, NULL, "agents"),
          number_at (now->health, NULL, "subscriptions"), number_at (now->health, NULL, "pending_requests"),
          number_at (now->health, NULL, "sessions"), number_at (now->health, NULL, "active_sessions"));
  printf ("Per second    requests %s   events %s   deliveries %s   errors %s\n", req, ev, del, err);
  printf ("Completions   %.0f done (%s/s), %.0f failed, %.0f running, %.0f queued; tokens %.0f in, %.0f out\n",
          number_at (now->health, "completions", "completed"), comp,
          number_at (now->health, "completions", "failed"), number_at (now->health, "completions", "running"),
          number_at (now->health, "completions", "queued"), number_at (now->health, "completions", "input_tokens"),
          number_at (now->health, "completions", "output_tokens"));
  if (budget != NULL)
    printf ("Budget        $%s of $%s spent today (%s%%)\n", spent, daily, pct);
  for (guint i = 0; providers != NULL && i < json_array_get_length (providers); i++)
    {
      JsonObject *p = ens_json_node_object (json_array_get_element (providers, i));
      GStrv row;

      if (p == NULL)
        continue;
      row = g_new0 (char *, G_N_ELEMENTS (headers) + 1);
      {
        GStrv cells = ens_row_from (p, members, G_N_ELEMENTS (members));

        for (guint c = 0; c < G_N_ELEMENTS (members); c++)
          row[c] = g_steal_pointer (&cells[c]);
        g_free (cells);
      }
      row[G_N_ELEMENTS (headers) - 1] = g_strdup (ens_json_bool (p, "cooling_down") ? "cooling down" : "ready");
      g_ptr_array_add (rows, row);
    }
  printf ("\n");
  if (rows->len > 0)
    ens_print_table (headers, G_N_ELEMENTS (headers), rows);
  else
    printf ("No provider backends.\n");
  if (!tty)
    printf ("\n");
  fflush (stdout);
}

int
ens_cmd_top (EnsCtl *ctl, const EnsCtlCommand *cmd, GPtrArray *args)
{
  g_autoptr(EnsCtlError) error = NULL;
  Sample a = { 0 }, b = { 0 };
  Sample *then = &a, *now = &b;
  gboolean tty = isatty (STDOUT_FILENO) && !ctl->opts->json;
  int status = ENS_EXIT_OK;

  (void) cmd;
  (void) args;
  if (!ens_install_stop_handlers (&error))
    return ens_report_error (error);
  if (!take_sample (ctl, then, &error))
    {
      sample_clear (then);
      return ens_report_error (error);
    }
  for (guint views = 0; ctl->opts->iterations == 0 || views < ctl->opts->iterations; views++)
    {
      Sample *swap;

      if (!ens_ctl_sleep (ctl->opts->interval_ms))
        break; /* interrupted: a normal end */
      if (!take_sample (ctl, now, &error))
        {
          status = ens_report_error (error);
          break;
        }
      if (ctl->opts->json)
        print_json_view (then, now);
      else
        print_text_view (then, now, tty);
      swap = then;
      then = now;
      now = swap;
    }
  sample_clear (&a);
  sample_clear (&b);
  return status;
}
