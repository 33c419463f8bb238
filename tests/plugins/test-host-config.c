/* test-host-config.c — plugins/common/config: typed reads through the host
 * table; an unknown key or one of another type gives the fallback, never a
 * GLib critical; the token file reader. */
#include "ens-host-config.h"
#include "ens-fake-host.h"

#include <glib/gstdio.h>

static void
test_typed (void)
{
  const EnsHost *host = fake_host ();
  EnsPlugin *self = fake_plugin_self ();
  static const char *const list[] = { "a", "b", NULL };
  g_autofree char *s = NULL;
  g_autofree char *missing = NULL;
  g_autofree char *wrong = NULL;
  g_auto (GStrv) strv = NULL;
  g_auto (GStrv) empty = NULL;

  fake_host_set_config ("u", g_variant_new_uint32 (7));
  fake_host_set_config ("i", g_variant_new_int32 (-7));
  fake_host_set_config ("b", g_variant_new_boolean (TRUE));
  fake_host_set_config ("d", g_variant_new_double (2.5));
  fake_host_set_config ("s", g_variant_new_string ("text"));
  fake_host_set_config ("as", g_variant_new_strv (list, -1));

  g_assert_cmpuint (ens_host_config_uint (host, self, "u", 1), ==, 7);
  g_assert_cmpint (ens_host_config_int (host, self, "i", 1), ==, -7);
  g_assert_true (ens_host_config_bool (host, self, "b", FALSE));
  g_assert_cmpfloat (ens_host_config_double (host, self, "d", 0), ==, 2.5);
  s = ens_host_config_string (host, self, "s", "fallback");
  g_assert_cmpstr (s, ==, "text");
  strv = ens_host_config_strv (host, self, "as");
  g_assert_cmpuint (g_strv_length (strv), ==, 2);
  g_assert_cmpstr (strv[1], ==, "b");

  /* Unknown keys and wrong types: the fallback. */
  g_assert_cmpuint (ens_host_config_uint (host, self, "nope", 3), ==, 3);
  g_assert_cmpuint (ens_host_config_uint (host, self, "s", 3), ==, 3);
  g_assert_cmpint (ens_host_config_int (host, self, "u", 4), ==, 4);
  g_assert_false (ens_host_config_bool (host, self, "u", FALSE));
  g_assert_cmpfloat (ens_host_config_double (host, self, "u", 1.5), ==, 1.5);
  missing = ens_host_config_string (host, self, "nope", NULL);
  g_assert_null (missing);
  wrong = ens_host_config_string (host, self, "u", "fallback");
  g_assert_cmpstr (wrong, ==, "fallback");
  empty = ens_host_config_strv (host, self, "s");
  g_assert_nonnull (empty);
  g_assert_cmpuint (g_strv_length (empty), ==, 0);
}

static void
test_token (void)
{
  const EnsHost *host = fake_host ();
  EnsPlugin *self = fake_plugin_self ();
  g_autofree char *dir = g_dir_make_tmp ("ens-test-XXXXXX", NULL);
  g_autofree char *good = g_build_filename (dir, "good", NULL);
  g_autofree char *blank = g_build_filename (dir, "blank", NULL);
  g_autofree char *absent = g_build_filename (dir, "absent", NULL);
  g_autoptr (GError) error = NULL;
  char *token = (char *) "x";

  g_assert_true (g_file_set_contents (good, "  s3cret \nsecond line\n", -1, NULL));
  g_assert_true (g_file_set_contents (blank, " \n\t\n", -1, NULL));

  fake_host_set_config ("token-file", g_variant_new_string (""));
  g_assert_true (ens_host_config_token (host, self, "token-file", &token, &error));
  g_assert_no_error (error);
  g_assert_null (token);

  fake_host_set_config ("token-file", g_variant_new_string (good));
  g_assert_true (ens_host_config_token (host, self, "token-file", &token, &error));
  g_assert_cmpstr (token, ==, "s3cret");
  g_free (token);

  fake_host_set_config ("token-file", g_variant_new_string (blank));
  g_assert_false (ens_host_config_token (host, self, "token-file", &token, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "token-file"));
  g_assert_null (token);
  g_clear_error (&error);

  fake_host_set_config ("token-file", g_variant_new_string (absent));
  g_assert_false (ens_host_config_token (host, self, "token-file", &token, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_null (token);

  g_unlink (good);
  g_unlink (blank);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  fake_host_init ("test-host-config");
  g_test_add_func ("/host-config/typed", test_typed);
  g_test_add_func ("/host-config/token", test_token);
  return g_test_run ();
}
