/* test-routers — the four router plugins, each dlopen()ed and run with a
 * fake host over table cases. */
#include "ens-fake-host.h"

#include <string.h>

typedef struct {
  const EnsPluginDesc *desc;
  gpointer instance;
} Router;

static Router multifactor, cheapest, fastest, roundrobin;

static void
router_load (Router *r, const char *env_var, const char *id, const char *name)
{
  g_autoptr (GError) error = NULL;
  const EnsRouterVTable *vt;

  r->desc = fake_plugin_load (env_var);
  g_assert_cmpuint (r->desc->abi_major, ==, ENS_ABI_MAJOR);
  g_assert_cmpint (r->desc->kind, ==, ENS_PLUGIN_KIND_ROUTER);
  g_assert_cmpstr (r->desc->id, ==, id);
  vt = r->desc->vtable;
  g_assert_cmpuint (vt->struct_size, >=, sizeof (EnsRouterVTable));
  g_assert_cmpstr (vt->name, ==, name);
  r->instance = r->desc->init (fake_host (), fake_plugin_self (), &error);
  g_assert_no_error (error);
  g_assert_nonnull (r->instance);
}

/* (transfer full) choose() on JSON texts; NULL with @error on refusal. */
static JsonNode *
choose (Router *r, const char *request, const char *candidates, GError **error)
{
  const EnsRouterVTable *vt = r->desc->vtable;
  g_autoptr (JsonNode) req = fake_json (request);
  g_autoptr (JsonNode) cands = fake_json (candidates);
  JsonNode *result = vt->choose (r->instance, req, cands, error);

  if (result)
    {
      JsonObject *obj;
      g_assert_true (JSON_NODE_HOLDS_OBJECT (result));
      obj = json_node_get_object (result);
      g_assert_true (json_object_has_member (obj, "provider"));
      g_assert_true (json_object_has_member (obj, "reasoning"));
      g_assert_true (json_object_has_member (obj, "estimated_cost"));
      g_assert_cmpfloat (json_object_get_double_member (obj, "confidence"), >=, 0.0);
      g_assert_cmpfloat (json_object_get_double_member (obj, "confidence"), <=, 1.0);
      /* The chosen one heads the ranking. */
      g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (obj, "ranking"), 0), ==,
                       json_object_get_string_member (obj, "provider"));
    }
  return result;
}

/* Checks the ranking is exactly @expected, a space-separated list. */
static void
assert_ranking (JsonNode *result, const char *expected)
{
  JsonArray *ranking = json_object_get_array_member (json_node_get_object (result), "ranking");
  g_autoptr (GString) got = g_string_new (NULL);

  for (guint i = 0; i < json_array_get_length (ranking); i++)
    {
      if (i)
        g_string_append_c (got, ' ');
      g_string_append (got, json_array_get_string_element (ranking, i));
    }
  g_assert_cmpstr (got->str, ==, expected);
}

static const char *
provider_of (JsonNode *result)
{
  return json_object_get_string_member (json_node_get_object (result), "provider");
}

static const char *
reasoning_of (JsonNode *result)
{
  return json_object_get_string_member (json_node_get_object (result), "reasoning");
}

/* A cloud model, a cheap fast one and the free local one. */
#define THREE "[" \
  "{\"name\":\"claude\",\"provider\":\"provider-anthropic\",\"models\":[\"claude-sonnet\"],\"quality\":0.95," \
  " \"cost_per_1k\":0.015,\"latency_ms\":1000,\"error_rate\":0,\"context_window\":200000," \
  " \"capabilities\":[\"chat\",\"coding\",\"vision\"],\"local\":false}," \
  "{\"name\":\"mini\",\"provider\":\"provider-openai\",\"models\":[\"gpt-4o-mini\"],\"quality\":0.7," \
  " \"cost_per_1k\":0.0006,\"latency_ms\":600,\"error_rate\":0,\"context_window\":128000," \
  " \"capabilities\":[\"chat\",\"coding\"],\"local\":false}," \
  "{\"name\":\"local\",\"provider\":\"provider-local\",\"models\":[\"local\"],\"quality\":0.3," \
  " \"cost_per_1k\":0,\"latency_ms\":5,\"error_rate\":0,\"context_window\":32768," \
  " \"capabilities\":[\"chat\",\"coding\"],\"local\":true}]"

typedef struct {
  const char *what;
  const char *request;
  const char *candidates;
  const char *ranking;   /* expected, best first */
  const char *reasoning; /* a substring of the expected reasoning, or NULL */
  double confidence;     /* expected, or < 0 to skip */
} Case;

static void
run_cases (Router *r, const Case *cases, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) result = NULL;

      g_test_message ("case: %s", cases[i].what);
      result = choose (r, cases[i].request, cases[i].candidates, &error);
      g_assert_no_error (error);
      g_test_message ("  reasoning: %s", reasoning_of (result));
      assert_ranking (result, cases[i].ranking);
      if (cases[i].reasoning)
        g_assert_nonnull (strstr (reasoning_of (result), cases[i].reasoning));
      if (cases[i].confidence >= 0)
        g_assert_cmpfloat_with_epsilon (json_object_get_double_member (json_node_get_object (result), "confidence"),
                                        cases[i].confidence, 1e-3);
    }
}

static void
test_multifactor_cases (void)
{
  static const Case cases[] = {
    /* 0.95×0.99925×0.8 = 0.7594 > mini 0.7×0.99998×0.88 = 0.616 > local 0.3×1×0.999 */
    { "plain: quality wins", "{\"token_count\":1000,\"priority\":\"medium\",\"max_latency\":0,\"budget_remaining\":-1}",
      THREE, "claude mini local", "claude: score 0.76 (quality 0.95, cost 1.00, latency 0.80, context 1.00)", 0.7594 },
    { "no budget member = unlimited", "{\"token_count\":1000}", THREE, "claude mini local", NULL, 0.7594 },
    /* claude would cost 0.015 > 0.01 left: cost factor 0.1 */
    { "budget exceeded: cheaper one wins", "{\"token_count\":1000,\"budget_remaining\":0.01}", THREE,
      "mini local claude", NULL, 0.616 },
    { "budget exhausted: the free one wins", "{\"token_count\":1000,\"budget_remaining\":0}", THREE,
      "local claude mini", "local: score 0.30", 0.2997 },
    /* claude latency 1000 > 800: factor 0.3 → 0.285 */
    { "max latency: slow one drops", "{\"token_count\":1000,\"max_latency\":800}", THREE, "mini local claude", NULL,
      0.616 },
    { "max latency met by all", "{\"token_count\":1000,\"max_latency\":5000}", THREE, "claude mini local", NULL,
      0.7594 },
    /* free, equal latency: small window 0.8×0.8×0.8 = 0.512 vs 0.72×0.8 = 0.576 */
    { "context factor: request over half the window",
      "{\"token_count\":5000}",
      "[{\"name\":\"small\",\"quality\":0.8,\"cost_per_1k\":0,\"latency_ms\":1000,\"context_window\":8000},"
      " {\"name\":\"big\",\"quality\":0.72,\"cost_per_1k\":0,\"latency_ms\":1000,\"context_window\":128000}]",
      "big small", "big: score 0.58", 0.576 },
    { "context factor: fits in half",
      "{\"token_count\":1000}",
      "[{\"name\":\"small\",\"quality\":0.8,\"cost_per_1k\":0,\"latency_ms\":1000,\"context_window\":8000},"
      " {\"name\":\"big\",\"quality\":0.72,\"cost_per_1k\":0,\"latency_ms\":1000,\"context_window\":128000}]",
      "small big", NULL, 0.64 },
    { "context factor named in reasoning",
      "{\"token_count\":5000}",
      "[{\"name\":\"small\",\"quality\":0.8,\"cost_per_1k\":0,\"latency_ms\":1000,\"context_window\":8000}]",
      "small", "context 0.80", 0.512 },
    /* medium: 0.84×0.95 = 0.798 < 1.0×0.85 */
    { "priority medium: best quality",
      "{\"token_count\":100,\"priority\":\"medium\"}",
      "[{\"name\":\"a\",\"quality\":0.84,\"cost_per_1k\":0,\"latency_ms\":250},"
      " {\"name\":\"b\",\"quality\":1.0,\"cost_per_1k\":0,\"latency_ms\":750}]",
      "b a", NULL, 0.85 },
    /* high: quality ×1.2 caps both at 1, cost ×0.8: 0.8×0.95 = 0.76 > 0.8×0.85 */
    { "priority high: quality boosted, speed decides",
      "{\"token_count\":100,\"priority\":\"high\"}",
      "[{\"name\":\"a\",\"quality\":0.84,\"cost_per_1k\":0,\"latency_ms\":250},"
      " {\"name\":\"b\",\"quality\":1.0,\"cost_per_1k\":0,\"latency_ms\":750}]",
      "a b", "a: score 0.76 (quality 1.00, cost 0.80, latency 0.95, context 1.00); high priority", 0.76 },
    /* medium: paid 0.9×(1−4.6/20 = 0.77) = 0.693 < free 0.75 */
    { "priority medium: free one wins on cost",
      "{\"token_count\":100000,\"priority\":\"medium\"}",
      "[{\"name\":\"paid\",\"quality\":0.9,\"cost_per_1k\":0.046,\"latency_ms\":0},"
      " {\"name\":\"free\",\"quality\":0.75,\"cost_per_1k\":0,\"latency_ms\":0}]",
      "free paid", NULL, 0.75 },
    /* low: quality ×0.9, cost ×1.3 (0.77 → 1): 0.81 > 0.675 */
    { "priority low: cost weighs less, paid one wins",
      "{\"token_count\":100000,\"priority\":\"low\"}",
      "[{\"name\":\"paid\",\"quality\":0.9,\"cost_per_1k\":0.046,\"latency_ms\":0},"
      " {\"name\":\"free\",\"quality\":0.75,\"cost_per_1k\":0,\"latency_ms\":0}]",
      "paid free", "; low priority", 0.81 },
    { "capability filter", "{\"token_count\":1000,\"task_type\":\"vision\"}", THREE, "claude", NULL, -1 },
    { "capability filter keeps all that have it", "{\"token_count\":1000,\"task_type\":\"coding\"}", THREE,
      "claude mini local", NULL, -1 },
    { "no capabilities member: serves anything", "{\"task_type\":\"vision\"}",
      "[{\"name\":\"any\",\"quality\":0.5},{\"name\":\"none\",\"quality\":0.9,\"capabilities\":[]}]", "any", NULL, -1 },
    { "model filter by models", "{\"token_count\":1000,\"model\":\"gpt-4o-mini\"}", THREE, "mini", NULL, -1 },
    { "model filter by name", "{\"token_count\":1000,\"model\":\"local\"}", THREE, "local", NULL, -1 },
    { "cooling down and failing are left out", "{\"token_count\":1000}",
      "[{\"name\":\"claude\",\"quality\":0.95,\"cost_per_1k\":0.015,\"latency_ms\":1000,\"cooling_down\":true},"
      " {\"name\":\"mini\",\"quality\":0.7,\"cost_per_1k\":0.0006,\"latency_ms\":600,\"error_rate\":1.0},"
      " {\"name\":\"local\",\"quality\":0.3,\"cost_per_1k\":0,\"latency_ms\":5}]",
      "local", NULL, -1 },
    /* 0.95×0.8×(1−0.5) = 0.38 < mini 0.616 */
    { "error rate lowers the score", "{\"token_count\":1000}",
      "[{\"name\":\"claude\",\"quality\":0.95,\"cost_per_1k\":0.015,\"latency_ms\":1000,\"error_rate\":0.5},"
      " {\"name\":\"mini\",\"quality\":0.7,\"cost_per_1k\":0.0006,\"latency_ms\":600}]",
      "mini claude", NULL, 0.616 },
  };

  run_cases (&multifactor, cases, G_N_ELEMENTS (cases));
}

static void
test_multifactor_result (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) result = choose (&multifactor, "{\"token_count\":2000}", THREE, &error);
  JsonObject *obj = json_node_get_object (result);

  g_assert_no_error (error);
  g_assert_cmpstr (provider_of (result), ==, "claude");
  /* 2000 tokens at 0.015 per 1k */
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (obj, "estimated_cost"), 0.03, 1e-9);
  g_assert_true (json_object_has_member (json_object_get_object_member (obj, "scores"), "local"));
}

static void
assert_refused (Router *r, const char *request, const char *candidates, const char *why)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) result = choose (r, request, candidates, &error);

  g_assert_null (result);
  g_assert_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, why));
}

static void
test_nothing_eligible (void)
{
  Router *all[] = { &multifactor, &cheapest, &fastest, &roundrobin };

  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    {
      assert_refused (all[i], "{\"token_count\":10}", "[]", "no providers");
      assert_refused (all[i], "{\"task_type\":\"audio\"}", THREE, "3 lack capability \"audio\"");
      assert_refused (all[i], "{\"model\":\"gpt-5\"}", THREE, "do not serve model \"gpt-5\"");
      assert_refused (all[i], "{}",
                      "[{\"name\":\"a\",\"cooling_down\":true},{\"name\":\"b\",\"error_rate\":1}]",
                      "1 is cooling down after failures, 1 fails every request");
    }
}

static void
test_cheapest (void)
{
  static const Case cases[] = {
    { "cheapest first", "{\"token_count\":1000}", THREE, "local mini claude", "local: cheapest", -1 },
    { "ties by quality", "{\"token_count\":1000}",
      "[{\"name\":\"free-low\",\"quality\":0.3,\"cost_per_1k\":0},{\"name\":\"paid\",\"quality\":0.9,\"cost_per_1k\":0.01},"
      " {\"name\":\"free-high\",\"quality\":0.6,\"cost_per_1k\":0}]",
      "free-high free-low paid", NULL, 0.6 },
    { "price decides with zero tokens", "{\"token_count\":0}",
      "[{\"name\":\"dear\",\"quality\":0.9,\"cost_per_1k\":0.01},{\"name\":\"cheap\",\"quality\":0.5,\"cost_per_1k\":0.001}]",
      "cheap dear", NULL, -1 },
    { "filters apply", "{\"token_count\":1000,\"task_type\":\"vision\"}", THREE, "claude", NULL, -1 },
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) result = NULL;

  run_cases (&cheapest, cases, G_N_ELEMENTS (cases));
  result = choose (&cheapest, "{\"token_count\":3000,\"model\":\"claude-sonnet\"}", THREE, &error);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (json_node_get_object (result), "estimated_cost"),
                                  0.045, 1e-9);
}

static void
test_fastest (void)
{
  static const Case cases[] = {
    { "fastest first", "{\"token_count\":1000}", THREE, "local mini claude", "local: fastest", -1 },
    { "ties by quality", "{}",
      "[{\"name\":\"x\",\"quality\":0.3,\"latency_ms\":100},{\"name\":\"slow\",\"quality\":1,\"latency_ms\":900},"
      " {\"name\":\"y\",\"quality\":0.6,\"latency_ms\":100}]",
      "y x slow", NULL, 0.6 },
    { "cooling down skipped", "{}",
      "[{\"name\":\"quick\",\"latency_ms\":1,\"cooling_down\":true},{\"name\":\"slow\",\"latency_ms\":900}]", "slow",
      NULL, -1 },
  };

  run_cases (&fastest, cases, G_N_ELEMENTS (cases));
}

static void
test_roundrobin (void)
{
  /* Rotation is over names in order (a b c), whatever the input order. */
  static const char *const expected[] = { "a b c", "b c a", "c a b", "a b c", "b c a" };
  const char *cands = "[{\"name\":\"c\"},{\"name\":\"a\"},{\"name\":\"b\"}]";

  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) result = choose (&roundrobin, "{}", cands, &error);
      g_assert_no_error (error);
      assert_ranking (result, expected[i]);
    }
  /* Only eligible ones take turns: with b cooling down, a and c alternate. */
  {
    const char *two = "[{\"name\":\"c\"},{\"name\":\"a\"},{\"name\":\"b\",\"cooling_down\":true}]";
    g_autoptr (GError) error = NULL;
    g_autoptr (JsonNode) r1 = choose (&roundrobin, "{}", two, &error);
    g_autoptr (JsonNode) r2 = choose (&roundrobin, "{}", two, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (json_node_get_object (r1), "ranking")), ==, 2);
    g_assert_cmpstr (provider_of (r1), !=, provider_of (r2));
  }
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  fake_host_init ("router-test");
  router_load (&multifactor, "ENS_ROUTER_MULTIFACTOR", "router-multifactor", "multifactor");
  router_load (&cheapest, "ENS_ROUTER_CHEAPEST", "router-cheapest", "cheapest");
  router_load (&fastest, "ENS_ROUTER_FASTEST", "router-fastest", "fastest");
  router_load (&roundrobin, "ENS_ROUTER_ROUNDROBIN", "router-roundrobin", "roundrobin");

  g_test_add_func ("/routers/multifactor/cases", test_multifactor_cases);
  g_test_add_func ("/routers/multifactor/result", test_multifactor_result);
  g_test_add_func ("/routers/nothing-eligible", test_nothing_eligible);
  g_test_add_func ("/routers/cheapest", test_cheapest);
  g_test_add_func ("/routers/fastest", test_fastest);
  g_test_add_func ("/routers/roundrobin", test_roundrobin);
  status = g_test_run ();

  multifactor.desc->stop (multifactor.instance);
  cheapest.desc->stop (cheapest.instance);
  fastest.desc->stop (fastest.instance);
  roundrobin.desc->stop (roundrobin.instance);
  return status;
}
