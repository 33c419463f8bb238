/* ens-stats.c — the last ten minutes of the daemon's counters.
 *
 * Once a second the running totals (requests, errors, events published and
 * delivered, completions and their summed durations) and two gauges (open
 * connections, completions running) are copied into the next slot of a
 * fixed ring: a sample costs a few loads and stores, never an allocation.
 * Rates are made only when someone asks, from two neighbouring samples and
 * the time really elapsed between them (a late timer does not bend them). */
#include "ens-stats.h"
#include "ens-json.h"
#include "ens-message-private.h"

#define STATS_INTERVAL_S 1
#define STATS_POINTS 600 /* ten minutes */
#define STATS_SLOTS (STATS_POINTS + 1)

typedef struct {
  gint64 real_ms;
  gint64 mono_us;
  guint64 requests, errors, published, delivered, completed, failed;
  double completion_ms; /* summed over the completed ones */
  guint connections, running;
} Sample;

/* What one second looked like, from the samples at its ends. */
typedef struct {
  double requests, deliveries, published, errors, completions; /* per second */
  double latency_ms;                                            /* < 0: none finished */
} Point;

struct _EnsStats {
  const EnsCounters *counters;
  EnsBus *bus;
  EnsClients *clients;
  EnsCompletions *completions;
  Sample ring[STATS_SLOTS];
  guint head;  /* the slot the next sample goes to */
  guint count; /* samples held */
  guint timer_id;
  GPtrArray *watchers; /* EnsClient*, (transfer none): each leaves on client-closed */
};

/* The rates, in the order the history lists them. */
static const struct {
  const char *name;
  gsize offset;
} rates[] = {
  { "requests_per_s", G_STRUCT_OFFSET (Point, requests) },
  { "deliveries_per_s", G_STRUCT_OFFSET (Point, deliveries) },
  { "published_per_s", G_STRUCT_OFFSET (Point, published) },
  { "errors_per_s", G_STRUCT_OFFSET (Point, errors) },
  { "completions_per_s", G_STRUCT_OFFSET (Point, completions) },
};

#define RATE(p, i) (*(const double *) ((const char *) (p) + rates[i].offset))

/* Three decimals are plenty for a chart (and keep the JSON short). */
static double
round3 (double v)
{
  return (double) (gint64) (v * 1000.0 + (v >= 0 ? 0.5 : -0.5)) / 1000.0;
}

/* @i-th sample from the oldest (i < count). */
static const Sample *
sample_at (EnsStats *stats, guint i)
{
  return &stats->ring[(stats->head + STATS_SLOTS - stats->count + i) % STATS_SLOTS];
}

static void
point_of (const Sample *prev, const Sample *cur, Point *p)
{
  double dt = (double) (cur->mono_us - prev->mono_us) / G_USEC_PER_SEC;
  guint64 done = cur->completed - prev->completed;

  if (dt <= 0)
    dt = STATS_INTERVAL_S;
  p->requests = (double) (cur->requests - prev->requests) / dt;
  p->deliveries = (double) (cur->delivered - prev->delivered) / dt;
  p->published = (double) (cur->published - prev->published) / dt;
  p->errors = (double) (cur->errors - prev->errors) / dt;
  p->completions = (double) (done + cur->failed - prev->failed) / dt;
  p->latency_ms = done ? (cur->completion_ms - prev->completion_ms) / (double) done : -1;
}

void
ens_stats_sample_at (EnsStats *stats, gint64 mono_us, gint64 real_ms)
{
  Sample *s = &stats->ring[stats->head];

  s->real_ms = real_ms;
  s->mono_us = mono_us;
  s->requests = stats->counters->requests;
  s->errors = stats->counters->errors;
  s->published = ens_bus_published (stats->bus);
  s->delivered = ens_bus_delivered (stats->bus);
  ens_completions_totals (stats->completions, &s->completed, &s->failed, &s->completion_ms);
  s->connections = ens_clients_count (stats->clients);
  s->running = ens_completions_running (stats->completions);
  stats->head = (stats->head + 1) % STATS_SLOTS;
  stats->count = MIN (stats->count + 1, STATS_SLOTS);
}

/* ------------------------------------------------------------------ output */

JsonNode *
ens_stats_history (EnsStats *stats, guint n)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);
  guint held = stats->count > 0 ? stats->count - 1 : 0;
  guint first = held > n ? held - n : 0; /* point i is made of samples i and i+1 */
  guint len = held - first;
  JsonArray *t = json_array_sized_new (len), *latency = json_array_sized_new (len);
  JsonArray *connections = json_array_sized_new (len), *running = json_array_sized_new (len);
  JsonArray *columns[G_N_ELEMENTS (rates)];

  for (guint f = 0; f < G_N_ELEMENTS (rates); f++)
    columns[f] = json_array_sized_new (len);
  for (guint i = first; i < held; i++)
    {
      const Sample *cur = sample_at (stats, i + 1);
      Point p;

      point_of (sample_at (stats, i), cur, &p);
      json_array_add_int_element (t, cur->real_ms);
      for (guint f = 0; f < G_N_ELEMENTS (rates); f++)
        json_array_add_double_element (columns[f], round3 (RATE (&p, f)));
      if (p.latency_ms < 0)
        json_array_add_null_element (latency);
      else
        json_array_add_double_element (latency, round3 (p.latency_ms));
      json_array_add_int_element (connections, cur->connections);
      json_array_add_int_element (running, cur->running);
    }
  json_object_set_int_member (obj, "interval_ms", STATS_INTERVAL_S * 1000);
  json_object_set_int_member (obj, "capacity", STATS_POINTS);
  json_object_set_int_member (obj, "count", len);
  json_object_set_array_member (obj, "t", t);
  for (guint f = 0; f < G_N_ELEMENTS (rates); f++)
    json_object_set_array_member (obj, rates[f].name, columns[f]);
  json_object_set_array_member (obj, "completion_latency_ms", latency);
  json_object_set_array_member (obj, "connections", connections);
  json_object_set_array_member (obj, "completions_running", running);
  return node;
}

/* The newest point and the running totals, for the watchers. */
static JsonNode *
newest (EnsStats *stats)
{
  JsonObject *obj, *totals = json_object_new ();
  JsonNode *node = ens_json_object_node (&obj);
  const Sample *cur = sample_at (stats, stats->count - 1);
  Point p;

  point_of (sample_at (stats, stats->count - 2), cur, &p);
  json_object_set_int_member (obj, "t", cur->real_ms);
  for (guint f = 0; f < G_N_ELEMENTS (rates); f++)
    json_object_set_double_member (obj, rates[f].name, round3 (RATE (&p, f)));
  if (p.latency_ms < 0)
    json_object_set_null_member (obj, "completion_latency_ms");
  else
    json_object_set_double_member (obj, "completion_latency_ms", round3 (p.latency_ms));
  json_object_set_int_member (obj, "connections", cur->connections);
  json_object_set_int_member (obj, "completions_running", cur->running);
  json_object_set_int_member (totals, "requests", cur->requests);
  json_object_set_int_member (totals, "errors", cur->errors);
  json_object_set_int_member (totals, "events_published", cur->published);
  json_object_set_int_member (totals, "events_delivered", cur->delivered);
  json_object_set_int_member (totals, "completions", cur->completed);
  json_object_set_int_member (totals, "completions_failed", cur->failed);
  json_object_set_object_member (obj, "totals", totals);
  return node;
}

static void
tell_watchers (EnsStats *stats)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
  g_autoptr (JsonNode) data = NULL;
  g_autoptr (EnsMessage) event = NULL;

  if (stats->watchers->len == 0 || stats->count < 2)
    return;
  data = newest (stats);
  init.topic = "ensemble.stats";
  init.from = "ensembled";
  init.data = data;
  event = ens_message_new (&init);
  /* One message for all: each transport encodes it once. */
  for (guint i = 0; i < stats->watchers->len; i++)
    ens_client_deliver (g_ptr_array_index (stats->watchers, i), event);
}

static gboolean
tick (gpointer data)
{
  EnsStats *stats = data;

  ens_stats_sample_at (stats, g_get_monotonic_time (), g_get_real_time () / 1000);
  tell_watchers (stats);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------ verbs */

/* "seconds": absent (all), or an integer from 1 to STATS_POINTS. */
static gboolean
read_seconds (EnsCall *call, guint *out)
{
  JsonNode *n = call->params ? json_object_get_member (call->params, "seconds") : NULL;
  gint64 v;

  *out = STATS_POINTS;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  v = json_node_get_int (n);
  if (v < 1 || v > STATS_POINTS)
    return FALSE;
  *out = (guint) v;
  return TRUE;
}

static EnsMessage *
verb_history (EnsCall *call, gpointer data)
{
  guint seconds;
  g_autoptr (JsonNode) reply = NULL;

  if (!read_seconds (call, &seconds))
    return ens_call_invalid (call, "seconds", "an integer from 1 to 600");
  reply = ens_stats_history (data, seconds);
  return ens_message_new_reply (call->msg, reply);
}

/* The answer carries the history up to now, so that the watcher misses no
 * point between the two. */
static EnsMessage *
verb_watch (EnsCall *call, gpointer data)
{
  EnsStats *stats = data;
  guint seconds;
  JsonObject *obj;
  g_autoptr (JsonNode) reply = NULL;

  if (!read_seconds (call, &seconds))
    return ens_call_invalid (call, "seconds", "an integer from 1 to 600");
  if (call->client == NULL)
    return ens_call_error (call, ENS_ERR_INVALID_REQUEST, "stats.watch needs a client connection");
  if (!g_ptr_array_find (stats->watchers, call->client, NULL))
    {
      g_ptr_array_add (stats->watchers, call->client);
      call->client->holds++; /* a watching connection is not idle */
    }
  reply = ens_json_object_node (&obj);
  json_object_set_boolean_member (obj, "watching", TRUE);
  json_object_set_member (obj, "history", ens_stats_history (stats, seconds));
  return ens_message_new_reply (call->msg, reply);
}

static EnsMessage *
verb_unwatch (EnsCall *call, gpointer data)
{
  EnsStats *stats = data;
  JsonObject *obj;
  g_autoptr (JsonNode) reply = ens_json_object_node (&obj);
  gboolean was = call->client && g_ptr_array_remove (stats->watchers, call->client);

  if (was)
    call->client->holds--;
  json_object_set_boolean_member (obj, "watching", FALSE);
  json_object_set_boolean_member (obj, "was_watching", was);
  return ens_message_new_reply (call->msg, reply);
}

void
ens_stats_add_verbs (EnsStats *stats, EnsVerbs *verbs)
{
  ens_verbs_add (verbs, "stats.history", verb_history, stats);
  ens_verbs_add (verbs, "stats.watch", verb_watch, stats);
  ens_verbs_add (verbs, "stats.unwatch", verb_unwatch, stats);
}

/* ------------------------------------------------------------------ life */

EnsStats *
ens_stats_new (const EnsCounters *counters, EnsBus *bus, EnsClients *clients, EnsCompletions *completions)
{
  EnsStats *stats = g_new0 (EnsStats, 1);

  stats->counters = counters;
  stats->bus = bus;
  stats->clients = clients;
  stats->completions = completions;
  stats->watchers = g_ptr_array_new ();
  /* the first point is due a second from now */
  ens_stats_sample_at (stats, g_get_monotonic_time (), g_get_real_time () / 1000);
  stats->timer_id = g_timeout_add_seconds (STATS_INTERVAL_S, tick, stats);
  return stats;
}

void
ens_stats_client_closed (EnsStats *stats, EnsClient *client)
{
  g_ptr_array_remove (stats->watchers, client);
}

void
ens_stats_free (EnsStats *stats)
{
  if (stats == NULL)
    return;
  if (stats->timer_id)
    g_source_remove (stats->timer_id);
  g_ptr_array_unref (stats->watchers);
  g_free (stats);
}
