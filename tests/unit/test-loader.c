/* The loader against fixture plugins broken on purpose: each is refused
 * with its own reason, and a good one loads, starts and stops. */
#include "ens-daemon.h"

#include <glib/gstdio.h>
#include <string.h>

static EnsDaemon *daemon_;

static void
rm_rf (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (dir);
}

static char *
fixture (const char *kind, const char *name)
{
  const char *dir = g_getenv (g_str_equal (kind, "good") ? "ENS_GOOD_FIXTURES" : "ENS_BAD_FIXTURES");
  g_assert_nonnull (dir);
  return g_strdup_printf ("%s/%s.so", dir, name);
}

static void
expect_refusal (EnsLoader *loader, const char *name, int code, const char *words)
{
  g_autofree char *path = fixture ("bad", name);
  g_autoptr (GError) error = NULL;

  g_assert_null (ens_loader_load_file (loader, path, NULL, &error));
  g_assert_error (error, ENS_PLUGIN_ERROR, code);
  if (!g_str_match_string (words, error->message, FALSE) && !strstr (error->message, words))
    g_error ("%s: reason \"%s\" lacks \"%s\"", name, error->message, words);
}

static void
test_refusals (void)
{
  EnsLoader *loader = daemon_->loader;
  g_autofree char *good = fixture ("good", "agent-echo");
  g_autoptr (GError) error = NULL;
  EnsPlugin *echo;

  expect_refusal (loader, "bad-major", ENS_PLUGIN_ERROR_ABI, "this daemon speaks major 1");
  expect_refusal (loader, "bad-minor", ENS_PLUGIN_ERROR_ABI, "newer than this daemon");
  expect_refusal (loader, "bad-short", ENS_PLUGIN_ERROR_ABI, "needs at least");
  expect_refusal (loader, "bad-nosymbol", ENS_PLUGIN_ERROR_NO_SYMBOL, "ens_plugin_query");
  expect_refusal (loader, "bad-init", ENS_PLUGIN_ERROR_INIT, "the fixture refuses to start");
  expect_refusal (loader, "bad-vtable", ENS_PLUGIN_ERROR_ABI, "EnsAgentVTable");
  expect_refusal (loader, "bad-tools", ENS_PLUGIN_ERROR_ABI, "tools[0].input_schema must be a JSON Schema of an object");
  g_assert_null (ens_agents_lookup (daemon_->agents, "badtools"));

  echo = ens_loader_load_file (loader, good, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (echo);
  g_assert_cmpstr (ens_plugin_get_desc (echo)->id, ==, "agent-echo");
  g_assert_true (ens_agents_lookup (daemon_->agents, "echo") != NULL);

  /* the same id twice */
  g_assert_null (ens_loader_load_file (loader, good, NULL, &error));
  g_assert_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_DUPLICATE);
  g_clear_error (&error);

  ens_loader_stop_all (loader);
  g_assert_false (ens_agents_lookup (daemon_->agents, "echo") != NULL); /* nothing of it stays */
  g_assert_cmpuint (ens_loader_plugins (loader)->len, ==, 0);

  {
    char *disabled[] = { "agent-echo", NULL };
    g_assert_null (ens_loader_load_file (loader, good, disabled, &error));
    g_assert_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_DISABLED);
    g_clear_error (&error);
  }
  ens_loader_stop_all (loader);
}

static void
test_writable_file_refused (void)
{
  EnsLoader *loader = daemon_->loader;
  g_autofree char *good = fixture ("good", "agent-echo");
  g_autofree char *dir = g_dir_make_tmp ("ens-loader-XXXXXX", NULL);
  g_autofree char *copy = g_build_filename (dir, "agent-echo.so", NULL);
  g_autofree char *contents = NULL;
  gsize len;
  g_autoptr (GError) error = NULL;

  g_assert_true (g_file_get_contents (good, &contents, &len, NULL));
  g_assert_true (g_file_set_contents (copy, contents, len, NULL));
  g_assert_cmpint (g_chmod (copy, 0666), ==, 0);
  g_assert_null (ens_loader_load_file (loader, copy, NULL, &error));
  g_assert_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_UNSAFE_FILE);
  g_assert_nonnull (strstr (error->message, "writable"));
  g_unlink (copy);
  g_rmdir (dir);
  ens_loader_stop_all (loader);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *state_dir = g_dir_make_tmp ("ens-loader-state-XXXXXX", NULL);
    EnsConfig *config = ens_config_new (NULL, &error);
    EnsState *state;
    int status;

    g_assert_no_error (error);
    state = ens_state_open (state_dir, &error);
    g_assert_no_error (error);
    daemon_ = ens_daemon_new (config, state, "test");
    g_test_add_func ("/loader/refusals", test_refusals);
    g_test_add_func ("/loader/writable-file", test_writable_file_refused);
    status = g_test_run ();
    ens_daemon_stop (daemon_);
    ens_daemon_free (daemon_);
    rm_rf (state_dir);
    return status;
  }
}
