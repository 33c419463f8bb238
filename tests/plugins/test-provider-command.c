/* test-provider-command — the command provider, dlopen()ed with a fake host,
 * running the scripts next to this file: streamed text, claude-style JSON,
 * failures, timeout and cancel (the whole process group must be gone). */
#include "ens-fake-host.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const EnsPluginDesc *desc;
static const EnsProviderVTable *vt;
static gpointer instance;
static char *scripts;
static char *pidfile;

static char *
script (const char *name)
{
  return g_build_filename (scripts, name, NULL);
}

/* One backend of this plugin (or, with @plugin, of another). */
static void
configure (const char *name, const char *plugin, const char *const *command, const char *prompt_mode,
           const char *output_format, guint timeout_ms)
{
  g_autoptr (GSettings) s = fake_host_provider_settings (name);
  static const char *const models[] = { "m1", "m2", NULL };

  g_assert_nonnull (s);
  g_settings_set_string (s, "plugin", plugin ? plugin : "provider-command");
  g_settings_set_strv (s, "command", command);
  g_settings_set_string (s, "prompt-mode", prompt_mode);
  g_settings_set_string (s, "output-format", output_format);
  g_settings_set_strv (s, "models", models);
  g_settings_set_value (s, "model-map", g_variant_new_parsed ("{'m2': 'upstream-2'}"));
  g_settings_set_uint (s, "timeout-ms", timeout_ms);
  g_settings_set_double (s, "cost-input-per-1k", 0.003);
}

static void
setup_backends (void)
{
  g_autofree char *stream = script ("stream-words.sh");
  g_autofree char *args = script ("echo-args.sh");
  g_autofree char *claude = script ("fake-claude.sh");
  g_autofree char *fail = script ("fail.sh");
  g_autofree char *sleeper = script ("sleep.sh");
  g_autofree char *bad = script ("bad-json.sh");
  static const char *const names[] = { "stream", "args", "claude", "fail", "sleepy", "timeout", "missing",
                                       "badjson", "other", "bad/name", NULL };

  configure ("stream", NULL, (const char *const[]) { "sh", stream, "{model}", NULL }, "stdin", "text", 10000);
  /* Run directly (no sh): found by path, exec bit needed. */
  configure ("args", NULL, (const char *const[]) { args, "--model", "{model}", "--prompt={prompt}", NULL },
             "argument", "text", 10000);
  configure ("claude", NULL, (const char *const[]) { "sh", claude, "-p", "--output-format", "json", NULL }, "stdin",
             "json", 10000);
  configure ("fail", NULL, (const char *const[]) { "sh", fail, NULL }, "stdin", "text", 10000);
  configure ("sleepy", NULL, (const char *const[]) { "sh", sleeper, NULL }, "stdin", "text", 60000);
  configure ("timeout", NULL, (const char *const[]) { "sh", sleeper, NULL }, "stdin", "text", 300);
  configure ("missing", NULL, (const char *const[]) { "ens-test-no-such-command", "-p", NULL }, "stdin", "text",
             10000);
  configure ("badjson", NULL, (const char *const[]) { "sh", bad, NULL }, "stdin", "json", 10000);
  configure ("other", "provider-openai", (const char *const[]) { "sh", stream, NULL }, "stdin", "text", 10000);
  fake_host_set_providers (names);
}

static FakeCompletion *
start (gpointer inst, const char *backend, const char *request, GCancellable *cancellable)
{
  FakeCompletion *fc = fake_completion_new ();
  g_autoptr (JsonNode) req = fake_json (request);

  vt->complete (inst, backend, req, (EnsCompletion *) fc, cancellable);
  g_assert_cmpuint (fc->ends, ==, 0); /* never inside complete() */
  return fc;
}

static FakeCompletion *
run (const char *backend, const char *request)
{
  FakeCompletion *fc = start (instance, backend, request, NULL);

  g_assert_true (fake_completion_wait (fc, 10000));
  fake_run_for (20);
  g_assert_cmpuint (fc->ends, ==, 1);
  g_assert_cmpuint (fc->after_end, ==, 0);
  return fc;
}

static JsonObject *
result_of (FakeCompletion *fc)
{
  if (fc->fail_code)
    g_error ("failed: %s: %s", fc->fail_code, fc->fail_message);
  g_assert_nonnull (fc->result);
  return json_node_get_object (fc->result);
}

static void
test_backends (void)
{
  g_autoptr (JsonNode) list = vt->backends (instance);
  JsonArray *array = json_node_get_array (list);
  g_autoptr (GString) names = g_string_new (NULL);
  JsonObject *first;

  for (guint i = 0; i < json_array_get_length (array); i++)
    g_string_append_printf (names, "%s ", json_object_get_string_member (json_array_get_object_element (array, i), "name"));
  /* Sorted; "other" belongs to another plugin, "bad/name" is not a valid name. */
  g_assert_cmpstr (names->str, ==, "args badjson claude fail missing sleepy stream timeout ");
  first = json_array_get_object_element (array, 0);
  g_assert_cmpstr (json_object_get_string_member (first, "provider"), ==, "provider-command");
  g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (first, "models"), 0), ==, "m1");
  g_assert_cmpfloat (json_object_get_double_member (first, "cost_per_1k_input"), ==, 0.003);
  g_assert_true (json_object_has_member (first, "capabilities"));
  g_assert_false (json_object_get_boolean_member (first, "local"));
}

static void
test_text_stream (void)
{
  g_autoptr (FakeCompletion) fc = run ("stream",
    "{\"stream\":true,\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"What is up?\"}]}");
  JsonObject *r = result_of (fc), *usage;

  g_test_message ("response: %s (%u chunks)", json_object_get_string_member (r, "response"), fc->chunks->len);
  g_assert_cmpstr (json_object_get_string_member (r, "response"), ==,
                   "alpha beta gamma delta epsilon model=m1 prompt=Be brief.\n\nWhat is up?\n");
  /* Streamed as printed: several chunks, joining to the whole output. */
  g_assert_cmpuint (fc->chunks->len, >=, 3);
  g_assert_cmpstr (fake_completion_text (fc), ==, json_object_get_string_member (r, "response"));
  g_assert_cmpstr (json_object_get_string_member (r, "model"), ==, "m1");
  g_assert_cmpstr (json_object_get_string_member (r, "finish_reason"), ==, "stop");
  usage = json_object_get_object_member (r, "usage");
  g_assert_true (json_object_get_boolean_member (usage, "estimated"));
  g_assert_cmpint (json_object_get_int_member (usage, "input_tokens"), ==, 6);   /* 22 chars */
  g_assert_cmpint (json_object_get_int_member (usage, "output_tokens"), ==, 18); /* 70 chars */
}

static void
test_model_map (void)
{
  g_autoptr (FakeCompletion) fc = run ("stream",
    "{\"model\":\"m2\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
  JsonObject *r = result_of (fc);

  g_assert_nonnull (strstr (json_object_get_string_member (r, "response"), "model=upstream-2 prompt=x"));
  /* The result names the model that ran, not the name it was asked by. */
  g_assert_cmpstr (json_object_get_string_member (r, "model"), ==, "upstream-2");
}

static void
test_prompt_argument (void)
{
  g_autoptr (FakeCompletion) fc = run ("args",
    "{\"model\":\"mx\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},"
    "{\"role\":\"assistant\",\"content\":\"Hello\"},{\"role\":\"user\",\"content\":\"Bye\"}]}");
  JsonObject *r = result_of (fc);

  g_assert_cmpstr (json_object_get_string_member (r, "response"), ==,
                   "args: [--model] [mx] [--prompt=User: Hi\n\nAssistant: Hello\n\nUser: Bye] stdin=[]\n");
}

static void
test_json (void)
{
  g_autoptr (FakeCompletion) fc = run ("claude", "{\"messages\":[{\"role\":\"user\",\"content\":\"Capital of France?\"}]}");
  JsonObject *r = result_of (fc), *usage;

  g_assert_cmpstr (json_object_get_string_member (r, "response"), ==,
                   "Paris is the capital of France (18 chars asked)");
  usage = json_object_get_object_member (r, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "input_tokens"), ==, 21);
  g_assert_cmpint (json_object_get_int_member (usage, "output_tokens"), ==, 9);
  g_assert_cmpint (json_object_get_int_member (usage, "cache_creation_input_tokens"), ==, 100);
  g_assert_false (json_object_has_member (usage, "estimated"));
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (r, "cost_usd"), 0.0042, 1e-9);
  /* The whole answer as one chunk. */
  g_assert_cmpuint (fc->chunks->len, ==, 1);
  g_assert_cmpstr (fake_completion_text (fc), ==, json_object_get_string_member (r, "response"));
}

static void
test_failures (void)
{
  static const struct {
    const char *backend, *code, *message;
  } cases[] = {
    { "fail", "UPSTREAM_ERROR", "exited with status 3: error: model overloaded, try later" },
    { "missing", "NOT_CONFIGURED", "ens-test-no-such-command" },
    { "nope", "NOT_CONFIGURED", "nope" },
    { "other", "NOT_CONFIGURED", "other" },
    { "badjson", "UPSTREAM_ERROR", "JSON" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (FakeCompletion) fc = run (cases[i].backend, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");

      g_test_message ("%s: %s: %s", cases[i].backend, fc->fail_code, fc->fail_message);
      g_assert_null (fc->result);
      g_assert_cmpstr (fc->fail_code, ==, cases[i].code);
      g_assert_nonnull (strstr (fc->fail_message, cases[i].message));
    }
}

/* The pid sleep.sh wrote, once it has started. */
static GPid
wait_for_pid (void)
{
  g_autofree char *text = NULL;
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (!g_file_get_contents (pidfile, &text, NULL, NULL))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (5000);
    }
  unlink (pidfile);
  return (GPid) atoi (text);
}

/* Waits until no process of group @pgid is left.  This test process is a
 * child subreaper, so the command's orphaned children (sleep.sh's `sleep`)
 * end up ours to reap: waitpid() on the group only returns dead ones, a
 * survivor keeps kill(-pgid, 0) succeeding.  The leader itself is reaped by
 * GSubprocess, so group members are only reaped once it is gone. */
static void
assert_group_gone (GPid pgid)
{
  /* Well before the provider's SIGKILL escalation (2 s): SIGTERM to the
   * group must have been enough for these scripts. */
  gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC;

  for (;;)
    {
      if (kill (pgid, 0) < 0 && errno == ESRCH)
        while (waitpid (-pgid, NULL, WNOHANG) > 0)
          ;
      if (kill (-pgid, 0) < 0 && errno == ESRCH)
        return;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (10000);
    }
}

static void
test_timeout (void)
{
  g_autoptr (FakeCompletion) fc = start (instance, "timeout", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL);
  gint64 t0 = g_get_monotonic_time ();
  GPid pgid = wait_for_pid ();

  g_assert_true (fake_completion_wait (fc, 5000));
  g_assert_cmpstr (fc->fail_code, ==, "TIMEOUT");
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 2 * G_USEC_PER_SEC);
  assert_group_gone (pgid);
  fake_run_for (50);
  g_assert_cmpuint (fc->ends, ==, 1);
}

static void
test_cancel (void)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (FakeCompletion) fc = start (instance, "sleepy", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                                         cancellable);
  GPid pgid = wait_for_pid ();
  gint64 t0;

  /* A group of its own, led by the command. */
  g_assert_cmpint (getpgid (pgid), ==, pgid);
  g_assert_cmpint (getpgid (pgid), !=, getpgrp ());
  /* Text printed before the wait arrives as a chunk while it runs. */
  while (fc->chunks->len == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpstr (g_ptr_array_index (fc->chunks, 0), ==, "thinking ");

  t0 = g_get_monotonic_time ();
  g_cancellable_cancel (cancellable);
  g_assert_true (fake_completion_wait (fc, 2000));
  g_assert_cmpint (g_get_monotonic_time () - t0, <, G_USEC_PER_SEC / 2);
  g_assert_cmpstr (fc->fail_code, ==, "CANCELLED");
  g_assert_null (fc->result);
  assert_group_gone (pgid);
  fake_run_for (50);
  g_assert_cmpuint (fc->ends, ==, 1);
  g_assert_cmpuint (fc->after_end, ==, 0);
}

static void
test_stop_while_running (void)
{
  g_autoptr (GError) error = NULL;
  gpointer other = desc->init (fake_host (), fake_plugin_self (), &error);
  g_autoptr (FakeCompletion) fc = NULL;
  GPid pgid;

  g_assert_no_error (error);
  fc = start (other, "sleepy", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL);
  pgid = wait_for_pid ();
  desc->stop (other);
  assert_group_gone (pgid);
  fake_run_for (100);
  /* The host ends completions at stop; the plugin reports nothing more. */
  g_assert_cmpuint (fc->ends, ==, 0);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  /* As in the daemon: a command that does not read its stdin must not kill us. */
  signal (SIGPIPE, SIG_IGN);
  /* Orphans of killed commands become ours, so the test can see them gone
   * even where pid 1 does not reap. */
  prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  scripts = g_strdup (g_getenv ("ENS_COMMAND_SCRIPTS"));
  g_assert_nonnull (scripts);
  pidfile = g_build_filename (g_get_tmp_dir (), "ens-test-command-XXXXXX", NULL);
  g_assert_nonnull (g_mkdtemp (pidfile));
  {
    char *dir = pidfile;
    pidfile = g_build_filename (dir, "pid", NULL);
    g_free (dir);
  }
  g_setenv ("ENS_TEST_PIDFILE", pidfile, TRUE);

  fake_host_init ("provider-command");
  setup_backends ();
  desc = fake_plugin_load ("ENS_PROVIDER_COMMAND");
  g_assert_cmpint (desc->kind, ==, ENS_PLUGIN_KIND_PROVIDER);
  g_assert_cmpstr (desc->id, ==, "provider-command");
  vt = desc->vtable;
  instance = desc->init (fake_host (), fake_plugin_self (), &error);
  g_assert_no_error (error);

  g_test_add_func ("/provider-command/backends", test_backends);
  g_test_add_func ("/provider-command/text-stream", test_text_stream);
  g_test_add_func ("/provider-command/model-map", test_model_map);
  g_test_add_func ("/provider-command/prompt-argument", test_prompt_argument);
  g_test_add_func ("/provider-command/json", test_json);
  g_test_add_func ("/provider-command/failures", test_failures);
  g_test_add_func ("/provider-command/timeout", test_timeout);
  g_test_add_func ("/provider-command/cancel", test_cancel);
  g_test_add_func ("/provider-command/stop-while-running", test_stop_while_running);
  status = g_test_run ();
  desc->stop (instance);
  {
    g_autofree char *dir = g_path_get_dirname (pidfile);
    rmdir (dir);
  }
  return status;
}
