/* ens-route.c — what the router plugins share (see the header). */
#include "ens-route.h"

#include <math.h>
#include <string.h>

double
ens_route_get_number (JsonObject *obj, const char *member, double def)
{
  JsonNode *node = obj ? json_object_get_member (obj, member) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return def;
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_INT64:
    case G_TYPE_DOUBLE:
    case G_TYPE_BOOLEAN:
      {
        double v = json_node_get_double (node);
        return isfinite (v) ? v : def;
      }
    default:
      return def;
    }
}

static const char *
get_string (JsonObject *obj, const char *member)
{
  JsonNode *node = obj ? json_object_get_member (obj, member) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
get_bool (JsonObject *obj, const char *member)
{
  JsonNode *node = json_object_get_member (obj, member);

  return node && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_BOOLEAN &&
         json_node_get_boolean (node);
}

/* TRUE when the string array @member of @obj holds @value. */
static gboolean
array_has (JsonObject *obj, const char *member, const char *value)
{
  JsonNode *node = json_object_get_member (obj, member);
  JsonArray *array;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return FALSE;
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *e = json_array_get_element (array, i);
      if (JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_STRING &&
          g_strcmp0 (json_node_get_string (e), value) == 0)
        return TRUE;
    }
  return FALSE;
}

/* %.2f exactly as printf rounds it (the decimal value of the double, to
 * nearest, ties to even), without printf (~1,500 instructions a number):
 * v × 100 = p + e exactly (e from fma), and only e decides a p that ends
 * in .5.  p below 2^52 keeps p - floor (p) exact: from 1e13 on, printf. */
const char *
ens_route_fmt (char *buf, gsize size, double v)
{
  double a = fabs (v), p, f, r, e;
  guint64 n;
  char tmp[24], *t = tmp + sizeof tmp;

  if (!isfinite (v) || a >= 1e13 || size < sizeof tmp)
    return g_ascii_formatd (buf, (int) size, "%.2f", v);
  p = a * 100.0;
  e = fma (a, 100.0, -p); /* a × 100 - p, exactly */
  f = floor (p);
  r = p - f; /* exact: p < 2^52 */
  n = (guint64) f;
  /* (r == 0 with e < 0, just below an integer, rounds to it: n stays.) */
  if (r > 0.5 || (r == 0.5 && (e > 0 || (e == 0 && (n & 1)))))
    n++;
  *--t = '\0';
  *--t = (char) ('0' + n % 10);
  *--t = (char) ('0' + n / 10 % 10);
  *--t = '.';
  n /= 100;
  do
    *--t = (char) ('0' + n % 10);
  while ((n /= 10) > 0);
  if (signbit (v))
    *--t = '-';
  memcpy (buf, t, (gsize) (tmp + sizeof tmp - t));
  return buf;
}

void
ens_route_request_parse (JsonNode *request, EnsRouteRequest *out)
{
  JsonObject *obj = request && JSON_NODE_HOLDS_OBJECT (request) ? json_node_get_object (request) : NULL;
  const char *s;

  out->token_count = (gint64) MAX (0.0, ens_route_get_number (obj, "token_count", 0));
  s = get_string (obj, "task_type");
  out->task_type = s && *s ? s : NULL;
  s = get_string (obj, "priority");
  out->priority = s && *s ? s : "medium";
  out->max_latency = MAX (0.0, ens_route_get_number (obj, "max_latency", 0));
  s = get_string (obj, "model");
  out->model = s && *s ? s : NULL;
  out->budget_remaining = ens_route_get_number (obj, "budget_remaining", -1);
}

static void
candidate_free (gpointer data)
{
  EnsRouteCandidate *c = data;

  g_free (c->note);
  g_free (c);
}

/* Why candidates were left out, for the error message. */
typedef struct {
  guint invalid, capability, model, cooling, failing;
} Excluded;

static void
append_reason (GString *why, guint n, const char *singular, const char *plural)
{
  if (n == 0)
    return;
  if (why->len > 0)
    g_string_append (why, ", ");
  g_string_append_printf (why, "%u %s", n, n == 1 ? singular : plural);
}

GPtrArray *
ens_route_eligible (const EnsRouteRequest *req, JsonNode *candidates, GError **error)
{
  g_autoptr (GPtrArray) eligible = g_ptr_array_new_with_free_func (candidate_free);
  JsonArray *array = candidates && JSON_NODE_HOLDS_ARRAY (candidates) ? json_node_get_array (candidates) : NULL;
  guint n = array ? json_array_get_length (array) : 0;
  Excluded ex = { 0 };
  g_autoptr (GString) why = NULL;

  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      JsonObject *obj = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *name = get_string (obj, "name");
      EnsRouteCandidate *c;
      double cost;

      if (name == NULL || *name == '\0')
        {
          ex.invalid++;
          continue;
        }
      /* Without a capabilities member a backend is taken to serve any task. */
      if (req->task_type && json_object_has_member (obj, "capabilities") &&
          !array_has (obj, "capabilities", req->task_type))
        {
          ex.capability++;
          continue;
        }
      if (req->model && g_strcmp0 (name, req->model) != 0 && !array_has (obj, "models", req->model))
        {
          ex.model++;
          continue;
        }
      if (get_bool (obj, "cooling_down"))
        {
          ex.cooling++;
          continue;
        }
      if (ens_route_get_number (obj, "error_rate", 0) >= 1.0)
        {
          ex.failing++;
          continue;
        }

      /* The core passes one blended price; a backends()-style object with
       * separate input/output prices is averaged. */
      cost = ens_route_get_number (obj, "cost_per_1k", -1);
      if (cost < 0)
        cost = (ens_route_get_number (obj, "cost_per_1k_input", 0) + ens_route_get_number (obj, "cost_per_1k_output", 0)) / 2;

      c = g_new0 (EnsRouteCandidate, 1);
      c->name = name;
      c->index = i;
      c->quality = CLAMP (ens_route_get_number (obj, "quality", 0.5), 0.0, 1.0);
      c->cost_per_1k = MAX (0.0, cost);
      c->latency_ms = MAX (0.0, ens_route_get_number (obj, "latency_ms", 1000));
      c->error_rate = CLAMP (ens_route_get_number (obj, "error_rate", 0), 0.0, 1.0);
      c->context_window = MAX (0.0, ens_route_get_number (obj, "context_window", 0));
      c->estimated_cost = (double) req->token_count / 1000.0 * c->cost_per_1k;
      g_ptr_array_add (eligible, c);
    }

  if (eligible->len > 0)
    return g_steal_pointer (&eligible);

  why = g_string_new (NULL);
  if (n == 0)
    g_string_append (why, "there are no providers");
  else
    {
      g_autofree char *cap = g_strdup_printf ("lacks capability \"%s\"", req->task_type ? req->task_type : "");
      g_autofree char *caps = g_strdup_printf ("lack capability \"%s\"", req->task_type ? req->task_type : "");
      g_autofree char *mod = g_strdup_printf ("does not serve model \"%s\"", req->model ? req->model : "");
      g_autofree char *mods = g_strdup_printf ("do not serve model \"%s\"", req->model ? req->model : "");

      append_reason (why, ex.capability, cap, caps);
      append_reason (why, ex.model, mod, mods);
      append_reason (why, ex.cooling, "is cooling down after failures", "are cooling down after failures");
      append_reason (why, ex.failing, "fails every request", "fail every request");
      append_reason (why, ex.invalid, "has no name", "have no name");
    }
  g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "no provider is eligible: %s", why->str);
  return NULL;
}

JsonNode *
ens_route_result (const char *policy, GPtrArray *ranked, const char *reasoning, double confidence,
                  gboolean with_scores)
{
  /* Built member by member: a JsonBuilder costs twice as much, and this
   * runs for every completion. */
  const EnsRouteCandidate *best = g_ptr_array_index (ranked, 0);
  JsonObject *o = json_object_new ();
  JsonArray *ranking = json_array_sized_new (ranked->len);
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (o, "provider", best->name);
  json_object_set_string_member (o, "reasoning", reasoning);
  json_object_set_double_member (o, "estimated_cost", best->estimated_cost);
  json_object_set_double_member (o, "confidence", CLAMP (confidence, 0.0, 1.0));
  json_object_set_string_member (o, "policy", policy);
  for (guint i = 0; i < ranked->len; i++)
    json_array_add_string_element (ranking, ((EnsRouteCandidate *) g_ptr_array_index (ranked, i))->name);
  json_object_set_array_member (o, "ranking", ranking);
  if (with_scores)
    {
      JsonObject *scores = json_object_new ();

      for (guint i = 0; i < ranked->len; i++)
        {
          const EnsRouteCandidate *c = g_ptr_array_index (ranked, i);
          json_object_set_double_member (scores, c->name, c->score);
        }
      json_object_set_object_member (o, "scores", scores);
    }
  json_node_take_object (node, o);
  return node;
}
