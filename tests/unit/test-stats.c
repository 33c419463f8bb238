/* The daemon's last minutes (core/ens-stats.c) with clocks of the test's
 * own: rates from neighbouring samples and the time really elapsed between
 * them, a ring that keeps the newest ten minutes, and a latency only where
 * completions ended. */
#include "ens-daemon.h"

#include <glib/gstdio.h>

static EnsDaemon *daemon_;

#define T0_REAL G_GINT64_CONSTANT (1800000000000) /* ms since the epoch */

static JsonArray *
column (JsonNode *history, const char *name)
{
  return json_object_get_array_member (json_node_get_object (history), name);
}

static void
test_rates_and_the_ring (void)
{
  EnsStats *stats = daemon_->stats;
  EnsCounters *counters = &daemon_->counters;
  gint64 mono = g_get_monotonic_time () + G_USEC_PER_SEC;
  g_autoptr (JsonNode) some = NULL;
  g_autoptr (JsonNode) all = NULL;
  JsonArray *t, *requests, *latency;

  /* 700 seconds: 2 requests a second; every 100th sample comes 2 s late
   * with 4 requests (a late timer: still 2 a second) */
  for (guint i = 1; i <= 700; i++)
    {
      guint dt = i % 100 == 0 ? 2 : 1;
      mono += dt * G_USEC_PER_SEC;
      counters->requests += 2 * dt;
      ens_stats_sample_at (stats, mono, T0_REAL + i * 1000);
    }
  all = ens_stats_history (stats, 600);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (all), "count"), ==, 600);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (all), "capacity"), ==, 600);
  t = column (all, "t");
  requests = column (all, "requests_per_s");
  latency = column (all, "completion_latency_ms");
  g_assert_cmpuint (json_array_get_length (t), ==, 600);
  /* the newest ten minutes, oldest first */
  g_assert_cmpint (json_array_get_int_element (t, 0), ==, T0_REAL + 101 * 1000);
  g_assert_cmpint (json_array_get_int_element (t, 599), ==, T0_REAL + 700 * 1000);
  for (guint i = 0; i < 600; i++)
    {
      g_assert_cmpfloat_with_epsilon (json_array_get_double_element (requests, i), 2.0, 1e-9);
      g_assert_true (JSON_NODE_HOLDS_NULL (json_array_get_element (latency, i))); /* no completion ended */
      if (i)
        g_assert_cmpint (json_array_get_int_element (t, i), >, json_array_get_int_element (t, i - 1));
    }
  /* fewer asked, the newest given */
  some = ens_stats_history (stats, 3);
  t = column (some, "t");
  g_assert_cmpuint (json_array_get_length (t), ==, 3);
  g_assert_cmpint (json_array_get_int_element (t, 2), ==, T0_REAL + 700 * 1000);
  g_assert_cmpuint (json_array_get_length (column (some, "connections")), ==, 3);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *state_dir = g_dir_make_tmp ("ens-stats-state-XXXXXX", NULL);
    EnsConfig *config = ens_config_new (NULL, &error);
    EnsState *state;
    int status;

    g_assert_no_error (error);
    state = ens_state_open (state_dir, &error);
    g_assert_no_error (error);
    daemon_ = ens_daemon_new (config, state, "test");
    g_test_add_func ("/stats/rates-and-the-ring", test_rates_and_the_ring);
    status = g_test_run ();
    ens_daemon_stop (daemon_);
    ens_daemon_free (daemon_);
    {
      g_autoptr (GDir) d = g_dir_open (state_dir, 0, NULL);
      const char *name;
      while (d && (name = g_dir_read_name (d)))
        {
          g_autofree char *path = g_build_filename (state_dir, name, NULL);
          g_unlink (path);
        }
    }
    g_rmdir (state_dir);
    return status;
  }
}
