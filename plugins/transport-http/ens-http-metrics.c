/* ens-http-metrics.c — GET /metrics, in the Prometheus text format (0.0.4).
 *
 * Every family has its HELP and TYPE lines; durations are in seconds and
 * money in US dollars, as the family names say.  Three parts:
 *   - the daemon, from its health and providers.list answers: build info,
 *     uptime, connections, agents, counters, completions, budget, the
 *     transports' dropped events, the Redis bridge, each provider backend;
 *   - this transport's own requests (ens_http_metrics_text);
 *   - the process, read from the kernel (the daemon's process: plugins run
 *     in it): CPU seconds, resident and virtual memory, open and maximum
 *     file descriptors, start time. */
#include "ens-http.h"
#include "ens-json-util.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* "# HELP name help\n# TYPE name type\n" */
static void
family (GString *out, const char *name, const char *type, const char *help)
{
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the format wants (\\, \", \n). */
static void
append_label_value (GString *out, const char *value)
{
  for (const char *p = value ? value : ""; *p; p++)
    {
      if (*p == '\\' || *p == '"')
        g_string_append_c (out, '\\');
      if (*p == '\n')
        {
          g_string_append (out, "\\n");
          continue;
        }
      g_string_append_c (out, *p);
    }
}

/* The shortest decimal that reads back as @v. */
static void
append_value (GString *out, double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_ascii_formatd (buf, sizeof buf, "%.15g", v);
  if (g_ascii_strtod (buf, NULL) != v)
    g_ascii_formatd (buf, sizeof buf, "%.17g", v);
  g_string_append (out, buf);
  g_string_append_c (out, '\n');
}

static void
sample_labelled (GString *out, const char *name, const char *label, const char *value, double v)
{
  g_string_append_printf (out, "%s{%s=\"", name, label);
  append_label_value (out, value);
  g_string_append (out, "\"} ");
  append_value (out, v);
}

static void
gauge (GString *out, const char *name, const char *help, double v)
{
  family (out, name, "gauge", help);
  g_string_append_printf (out, "%s ", name);
  append_value (out, v);
}

static void
counter (GString *out, const char *name, const char *help, double v)
{
  family (out, name, "counter", help);
  g_string_append_printf (out, "%s ", name);
  append_value (out, v);
}

/* ------------------------------------------------------------ the process */

static gboolean
read_statm (guint64 *size_pages, guint64 *resident_pages)
{
  g_autofree char *text = NULL;

  if (!g_file_get_contents ("/proc/self/statm", &text, NULL, NULL))
    return FALSE;
  return sscanf (text, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, size_pages, resident_pages) == 2;
}

static gint64
count_open_fds (void)
{
  DIR *dir = opendir ("/proc/self/fd");
  struct dirent *e;
  gint64 n = 0;

  if (dir == NULL)
    return -1;
  while ((e = readdir (dir)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir (dir);
  return n - 1; /* the folder's own, open while it is read */
}

static void
metrics_process (GString *out, double uptime_s)
{
  struct rusage ru;
  struct rlimit rl;
  guint64 size = 0, resident = 0;
  long page = sysconf (_SC_PAGESIZE);
  gint64 fds = count_open_fds ();

  if (getrusage (RUSAGE_SELF, &ru) == 0)
    counter (out, "process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
             (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double) ru.ru_stime.tv_sec +
               ru.ru_stime.tv_usec / 1e6);
  if (read_statm (&size, &resident) && page > 0)
    {
      gauge (out, "process_resident_memory_bytes", "Resident memory size in bytes.", (double) (resident * page));
      gauge (out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", (double) (size * page));
    }
  if (fds >= 0)
    gauge (out, "process_open_fds", "Number of open file descriptors.", (double) fds);
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    gauge (out, "process_max_fds", "Maximum number of open file descriptors.", (double) rl.rlim_cur);
  gauge (out, "process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.",
         (double) (g_get_real_time () / 1000) / 1000.0 - uptime_s);
}

/* ------------------------------------------------------------ the daemon */

static void metrics_providers (EnsHttpCall *call, EnsMessage *answer, gpointer data);

/* The bus bridge's state (transport-redis), when it is on. */
static void
metrics_bridge (GString *out, JsonArray *plugins)
{
  static const char *const families[][4] = {
    { "forwarded", "ensemble_redis_forwarded_total", "counter", "Local events written to Redis." },
    { "received", "ensemble_redis_received_total", "counter", "Events from other nodes delivered here." },
    { "rejected", "ensemble_redis_rejected_total", "counter", "Messages from Redis refused (bad channel or payload)." },
    { "reconnects", "ensemble_redis_reconnects_total", "counter", "Times the link to Redis came back." },
    { "outbox", "ensemble_redis_outbox", "gauge", "Commands held while Redis is unreachable." },
    { "outbox_dropped", "ensemble_redis_outbox_dropped_total", "counter", "Held commands dropped, the outbox full." },
  };

  for (guint i = 0; plugins && i < json_array_get_length (plugins); i++)
    {
      JsonObject *p = ens_array_object (plugins, i);
      JsonObject *info = ens_member_object (p, "info");
      const char *state = info ? ens_member_string_or (info, "state", "") : "";
      JsonNode *nodes;

      if (g_strcmp0 (ens_member_string_or (p, "id", ""), "transport-redis") != 0 ||
          info == NULL || g_str_equal (state, "disabled"))
        continue;
      gauge (out, "ensemble_redis_connected", "1 when both links to Redis are up.", g_str_equal (state, "connected"));
      nodes = json_object_get_member (info, "nodes");
      gauge (out, "ensemble_redis_nodes", "Nodes alive on the shared bus.",
             nodes && JSON_NODE_HOLDS_ARRAY (nodes) ? json_array_get_length (json_node_get_array (nodes)) : 0);
      for (guint f = 0; f < G_N_ELEMENTS (families); f++)
        {
          family (out, families[f][1], families[f][2], families[f][3]);
          g_string_append_printf (out, "%s %" G_GINT64_FORMAT "\n", families[f][1],
                                  ens_member_int (info, families[f][0], 0));
        }
    }
}

/* Step one: the daemon's health. */
static void
metrics_health (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  static const char *const counters[][2] = {
    { "requests", "Requests the core answered, every transport and dialect." },
    { "errors", "Requests answered with an error." },
    { "events_published", "Events published on the bus." },
    { "events_delivered", "Event deliveries to subscribers (one event to three subscribers counts three)." },
    { "agent_requests", "Requests forwarded to agents." },
    { "agent_timeouts", "Agent requests that met their deadline unanswered." },
  };
  GString *out = data;
  double uptime = 0;

  if (answer->kind == ENS_MESSAGE_REPLY && JSON_NODE_HOLDS_OBJECT (answer->data))
    {
      JsonObject *h = json_node_get_object (answer->data);
      JsonObject *c = ens_member_object (h, "counters");
      JsonObject *comp = ens_member_object (h, "completions");
      JsonObject *budget = ens_member_object (h, "llm_router");
      JsonArray *plugins = ens_member_array (h, "plugins");

      uptime = ens_member_double (h, "uptime_s", 0);
      family (out, "ensemble_build_info", "gauge", "The daemon's version and plugin ABI; always 1.");
      g_string_append (out, "ensemble_build_info{version=\"");
      append_label_value (out, ens_member_string_or (h, "version", ""));
      g_string_append_printf (out, "\",abi=\"%d.%d\",glib=\"%u.%u.%u\"} 1\n", ENS_ABI_MAJOR, ENS_ABI_MINOR,
                              glib_major_version, glib_minor_version, glib_micro_version);
      gauge (out, "ensemble_healthy", "1 when the daemon is healthy, 0 when degraded.",
             g_strcmp0 (ens_member_string (h, "status"), "healthy") == 0);
      gauge (out, "ensemble_uptime_seconds", "Seconds since the daemon started.", uptime);
      gauge (out, "ensemble_connections", "Open client connections, all transports.",
             (double) ens_member_int (h, "connections", 0));
      gauge (out, "ensemble_agents", "Registered agents.", (double) ens_member_int (h, "agents", 0));
      gauge (out, "ensemble_pending_requests", "Agent requests waiting for their answer.",
             (double) ens_member_int (h, "pending_requests", 0));
      gauge (out, "ensemble_sessions", "Sessions known to the daemon.", (double) ens_member_int (h, "sessions", 0));
      for (guint i = 0; c && i < G_N_ELEMENTS (counters); i++)
        {
          g_autofree char *name = g_strdup_printf ("ensemble_%s_total", counters[i][0]);
          counter (out, name, counters[i][1], (double) ens_member_int (c, counters[i][0], 0));
        }
      if (comp)
        {
          gauge (out, "ensemble_completion_queue_depth", "Completions waiting for a provider.",
                 (double) ens_member_int (comp, "queued", 0));
          gauge (out, "ensemble_completions_running", "Completions a provider is working on.",
                 (double) ens_member_int (comp, "running", 0));
          counter (out, "ensemble_completions_total", "Completions that ended with a result.",
                   (double) ens_member_int (comp, "completed", 0));
          counter (out, "ensemble_completions_failed_total", "Completions that ended in failure.",
                   (double) ens_member_int (comp, "failed", 0));
          counter (out, "ensemble_completion_fallbacks_total", "Completions moved to another backend after a failure.",
                   (double) ens_member_int (comp, "fallbacks", 0));
        }
      if (budget)
        {
          gauge (out, "ensemble_budget_spend_usd", "Spent today (UTC), in US dollars.",
                 ens_member_double (budget, "current_spend", 0));
          gauge (out, "ensemble_budget_daily_usd", "The daily budget, in US dollars.",
                 ens_member_double (budget, "daily_budget", 0));
        }
      family (out, "ensemble_transport_events_dropped_total", "counter", "Events dropped for slow consumers.");
      for (guint i = 0; plugins && i < json_array_get_length (plugins); i++)
        {
          JsonObject *p = ens_array_object (plugins, i);
          JsonObject *info = ens_member_object (p, "info");
          if (info && json_object_has_member (info, "events_dropped"))
            sample_labelled (out, "ensemble_transport_events_dropped_total", "plugin", ens_member_string (p, "id"),
                             (double) ens_member_int (info, "events_dropped", 0));
        }
      metrics_bridge (out, plugins);
    }
  metrics_process (out, uptime);
  /* step two: the providers */
  ens_http_core (call, NULL, "providers.list", NULL, 0, metrics_providers, out);
}

/* Step two: each provider backend; then this transport's own. */
static void
metrics_providers (EnsHttpCall *call, EnsMessage *answer, gpointer data)
{
  static const struct {
    const char *member, *name, *type, *help;
    double scale;
  } families[] = {
    { "calls", "ensemble_provider_calls_total", "counter", "Calls made to the backend.", 1 },
    { "failures", "ensemble_provider_failures_total", "counter", "Calls to the backend that failed.", 1 },
    { "input_tokens", "ensemble_provider_input_tokens_total", "counter", "Prompt tokens sent to the backend.", 1 },
    { "output_tokens", "ensemble_provider_output_tokens_total", "counter", "Tokens the backend generated.", 1 },
    { "cost", "ensemble_provider_cost_usd_total", "counter", "Spent on the backend, in US dollars.", 1 },
    { "latency_ms", "ensemble_provider_latency_seconds", "gauge",
      "The backend's observed latency (moving average), in seconds.", 0.001 },
    { "error_rate", "ensemble_provider_error_rate", "gauge", "The backend's recent error rate, from 0 to 1.", 1 },
    { "cooling_down", "ensemble_provider_cooling_down", "gauge", "1 while the backend is in cooldown after failures.", 1 },
  };
  GString *out = data;
  JsonArray *providers = answer->kind == ENS_MESSAGE_REPLY && JSON_NODE_HOLDS_OBJECT (answer->data)
                           ? ens_member_array (json_node_get_object (answer->data), "providers") : NULL;

  for (guint f = 0; f < G_N_ELEMENTS (families); f++)
    {
      family (out, families[f].name, families[f].type, families[f].help);
      for (guint i = 0; providers && i < json_array_get_length (providers); i++)
        {
          JsonObject *p = ens_array_object (providers, i);
          JsonNode *v = json_object_get_member (p, families[f].member);
          double value = v && JSON_NODE_HOLDS_VALUE (v) && json_node_get_value_type (v) == G_TYPE_BOOLEAN
                           ? (json_node_get_boolean (v) ? 1 : 0)
                           : ens_member_double (p, families[f].member, 0) * families[f].scale;
          sample_labelled (out, families[f].name, "provider", ens_member_string_or (p, "name", "?"), value);
        }
    }
  ens_http_metrics_text (ens_http_instance (call), out);
  ens_http_reply_text (call, 200, "text/plain; version=0.0.4; charset=utf-8", out->str);
  g_string_free (out, TRUE);
}

static void
route_metrics (EnsHttpCall *call)
{
  ens_http_core (call, NULL, "health", NULL, 0, metrics_health, g_string_new (NULL));
}

const EnsHttpRoute ens_http_routes_metrics[] = {
  { "GET", "/metrics", route_metrics, "meta",
    "Prometheus metrics (text format 0.0.4): the daemon, each provider backend, HTTP requests, the process", NULL,
    FALSE },
  { NULL },
};
