/* ens-bench-json.c — micro benchmark of ens_json_parse against json-glib's
 * JsonParser (what ens_json_parse used before), same texts, same run.
 *
 * Two texts: a typical publish request (~130 bytes) and a ~2 KB document (a
 * chat completion request with tools).  Each is parsed N times per round,
 * best of R rounds; prints ns per parse, MB/s and the ratio, and apart the
 * time to free a tree (the same json-glib tree either way).  Also the share of json_node_seal()
 * (ens_json_parse returns sealed trees, as json_parser_new_immutable did):
 * json-glib's mutable parse with and without a seal of its tree.
 *
 * Usage: ens-bench-json [--count N] [--rounds R] [--quick]
 * Not part of the test suite; build optimised (build-release).
 */
#include "ens-bench-measure.h"
#include "ens-json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char publish_request[] =
  "{\"id\":\"t1\",\"action\":\"publish\",\"data\":{\"topic\":\"bench.topic\",\"data\":"
  "{\"n\":12345,\"text\":\"hello world\",\"ok\":true,\"list\":[1,2,3]}}}";

static const char document_2k[] =
  "{\"id\":\"req-7f3a9c2e-5b1d-4e8f-a6c0-9d2b7e4f1a3c\",\"action\":\"completion\",\"agent\":\"assistant\","
  "\"timeout_ms\":30000,\"data\":{\"model\":\"gpt-4o-mini\",\"stream\":true,\"temperature\":0.7,"
  "\"max_tokens\":1024,\"top_p\":0.95,\"session_id\":\"sess-2026-11-21-0001\",\"messages\":["
  "{\"role\":\"system\",\"content\":\"You are a helpful assistant. Answer briefly and cite the "
  "documents you used. Never invent references; say \\\"I don't know\\\" instead.\"},"
  "{\"role\":\"user\",\"content\":\"What is the weather like in Z\\u00fcrich today, and should I take "
  "an umbrella? Also convert 21\\u00b0C to Fahrenheit.\"},"
  "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_01\",\"type\":\"function\","
  "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Z\\u00fcrich\\\","
  "\\\"units\\\":\\\"metric\\\"}\"}}]},"
  "{\"role\":\"tool\",\"tool_call_id\":\"call_01\",\"content\":\"{\\\"temp\\\":21.5,\\\"rain_mm\\\":"
  "3.2,\\\"wind_kmh\\\":14,\\\"sky\\\":\\\"overcast\\\"}\"},"
  "{\"role\":\"user\",\"content\":\"Thanks! And tomorrow?\\nPlease keep it short.\"}],"
  "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
  "\"Current weather and a short forecast for a city.\",\"parameters\":{\"type\":\"object\","
  "\"properties\":{\"city\":{\"type\":\"string\",\"description\":\"City name, e.g. Paris\"},"
  "\"units\":{\"type\":\"string\",\"enum\":[\"metric\",\"imperial\"]},\"days\":{\"type\":\"integer\","
  "\"minimum\":1,\"maximum\":7}},\"required\":[\"city\"]}}},"
  "{\"type\":\"function\",\"function\":{\"name\":\"convert_units\",\"description\":"
  "\"Converts a value between units of temperature, length or mass.\",\"parameters\":{\"type\":"
  "\"object\",\"properties\":{\"value\":{\"type\":\"number\"},\"from\":{\"type\":\"string\"},"
  "\"to\":{\"type\":\"string\"}},\"required\":[\"value\",\"from\",\"to\"]}}}],"
  "\"metadata\":{\"user\":\"u-48213\",\"tags\":[\"weather\",\"units\",\"chat\"],\"priority\":2,"
  "\"trace\":{\"span\":\"a1b2c3d4e5f60718\",\"parent\":\"0f1e2d3c4b5a6978\",\"sampled\":true},"
  "\"client\":{\"name\":\"ensemble-js\",\"version\":\"1.4.2\",\"platform\":\"linux-x64\"},"
  "\"limits\":{\"tokens_per_minute\":90000,\"requests_per_minute\":3500,\"budget_usd\":12.5},"
  "\"history\":[1732160000,1732160060,1732160120,1732160180,1732160240,1732160300],"
  "\"flags\":{\"cache\":false,\"log\":true,\"moderate\":true,\"retry\":{\"max\":3,\"backoff_ms\":250}}}}}";

typedef enum
{
  WITH_ENS,
  WITH_JSON_GLIB,         /* reused immutable parser, as the daemon had it */
  WITH_JSON_GLIB_MUTABLE, /* for the cost of sealing */
  WITH_JSON_GLIB_MUTABLE_SEAL,
} Way;

#define BATCH 16

/* Best-of-@rounds ns per parse, and per free of the tree (batches of
 * BATCH trees: parsing timed apart from freeing). */
static double
measure (Way way, const char *text, gsize len, guint count, guint rounds, double *free_ns)
{
  g_autoptr (JsonParser) immutable = json_parser_new_immutable ();
  g_autoptr (JsonParser) mutable = json_parser_new ();
  JsonNode **roots = g_new (JsonNode *, BATCH);
  double best = 0, best_free = 0;

  for (guint r = 0; r < rounds; r++)
    {
      gint64 parsing = 0, freeing = 0;
      for (guint done = 0; done < count; done += BATCH)
        {
          guint n = MIN (BATCH, count - done);
          gint64 t0 = ens_bench_now_ns (), t1;
          for (guint i = 0; i < n; i++)
            {
              JsonNode *root = NULL;
              switch (way)
                {
                case WITH_ENS:
                  root = ens_json_parse (text, len, NULL);
                  break;
                case WITH_JSON_GLIB:
                  if (json_parser_load_from_data (immutable, text, (gssize) len, NULL))
                    root = json_parser_steal_root (immutable);
                  break;
                case WITH_JSON_GLIB_MUTABLE:
                case WITH_JSON_GLIB_MUTABLE_SEAL:
                  if (json_parser_load_from_data (mutable, text, (gssize) len, NULL))
                    root = json_parser_steal_root (mutable);
                  if (root && way == WITH_JSON_GLIB_MUTABLE_SEAL)
                    json_node_seal (root);
                  break;
                }
              if (root == NULL)
                g_error ("parse failed");
              roots[i] = root;
            }
          t1 = ens_bench_now_ns ();
          for (guint i = 0; i < n; i++)
            json_node_unref (roots[i]);
          parsing += t1 - t0;
          freeing += ens_bench_now_ns () - t1;
        }
      double ns = (double) parsing / count, fns = (double) freeing / count;
      if (r == 0 || ns < best)
        best = ns;
      if (r == 0 || fns < best_free)
        best_free = fns;
    }
  g_free (roots);
  if (free_ns)
    *free_ns = best_free;
  return best;
}

static void
bench (const char *name, const char *text, guint count, guint rounds)
{
  gsize len = strlen (text);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (JsonNode) ours = ens_json_parse (text, len, &error);
  double ens, glib, mut, seal, ens_free, glib_free;

  /* Both see the same tree, or the figures mean nothing. */
  if (ours == NULL || !json_parser_load_from_data (parser, text, (gssize) len, NULL)
      || !json_node_equal (ours, json_parser_get_root (parser)))
    g_error ("%s: the parsers disagree", name);

  measure (WITH_ENS, text, len, count / 10 + 1, 1, NULL); /* warm up */
  measure (WITH_JSON_GLIB, text, len, count / 10 + 1, 1, NULL);
  ens = measure (WITH_ENS, text, len, count, rounds, &ens_free);
  glib = measure (WITH_JSON_GLIB, text, len, count, rounds, &glib_free);
  mut = measure (WITH_JSON_GLIB_MUTABLE, text, len, count, rounds, NULL);
  seal = measure (WITH_JSON_GLIB_MUTABLE_SEAL, text, len, count, rounds, NULL);

  printf ("%s (%zu bytes), %u parses, best of %u rounds:\n", name, len, count, rounds);
  printf ("  json-glib JsonParser  %7.0f ns/parse %6.1f MB/s   + %5.0f ns to free the tree\n", glib,
          len / glib * 1e3, glib_free);
  printf ("  ens_json_parse        %7.0f ns/parse %6.1f MB/s   + %5.0f ns to free the tree\n", ens,
          len / ens * 1e3, ens_free);
  printf ("  speed-up              %7.2fx  (parse and free: %.2fx)\n", glib / ens,
          (glib + glib_free) / (ens + ens_free));
  printf ("  of which json_node_seal %5.0f ns/tree (%.0f%% of an ens_json_parse)\n", seal - mut,
          100 * (seal - mut) / ens);
}

int
main (int argc, char **argv)
{
  guint count = 200000, rounds = 5;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--count") == 0 && i + 1 < argc)
        count = (guint) strtoul (argv[++i], NULL, 10);
      else if (strcmp (argv[i], "--rounds") == 0 && i + 1 < argc)
        rounds = (guint) strtoul (argv[++i], NULL, 10);
      else if (strcmp (argv[i], "--quick") == 0)
        count = 20000, rounds = 2;
      else
        {
          fprintf (stderr, "usage: %s [--count N] [--rounds R] [--quick]\n", argv[0]);
          return 2;
        }
    }
  if (count == 0 || rounds == 0)
    count = 1, rounds = 1;
  bench ("publish request", publish_request, count, rounds);
  bench ("2 KB document", document_2k, count / 10 + 1, rounds);
  return 0;
}
