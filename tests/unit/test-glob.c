/* Redis glob semantics of bus patterns. */
#include "ens-glob.h"

static void
test_glob (void)
{
  static const struct {
    const char *pattern, *string;
    gboolean match;
  } cases[] = {
    { "*", "", TRUE },
    { "*", "anything.at.all", TRUE },
    { "news.*", "news.tech", TRUE },
    { "news.*", "news.", TRUE },
    { "news.*", "news", FALSE },
    { "news.*", "sports.tech", FALSE },
    { "h?llo", "hello", TRUE },
    { "h?llo", "hllo", FALSE },
    { "h[ae]llo", "hallo", TRUE },
    { "h[ae]llo", "hillo", FALSE },
    { "h[^e]llo", "hallo", TRUE },
    { "h[^e]llo", "hello", FALSE },
    { "h[a-c]llo", "hbllo", TRUE },
    { "h[a-c]llo", "hdllo", FALSE },
    { "a\\*b", "a*b", TRUE },
    { "a\\*b", "axb", FALSE },
    { "*.request", "agent.naming.request", TRUE },
    { "agent.*.request", "agent.naming.response", FALSE },
    { "*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", FALSE },
    { "COMPLETION_RESULT:*", "COMPLETION_RESULT:c1-abc", TRUE },
    { "[", "[", FALSE },
    { "[abc", "a", TRUE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    if (ens_glob_match (cases[i].pattern, cases[i].string) != cases[i].match)
      g_error ("pattern %s on %s: expected %d", cases[i].pattern, cases[i].string, cases[i].match);
  g_assert_true (ens_glob_is_pattern ("a.*"));
  g_assert_true (ens_glob_is_pattern ("a?"));
  g_assert_false (ens_glob_is_pattern ("a.b:c-1"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/glob/redis-semantics", test_glob);
  return g_test_run ();
}
