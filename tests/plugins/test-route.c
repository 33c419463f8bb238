/* test-route.c — plugins/common/router on its own: ens_route_fmt() writes
 * what printf's %.2f writes (through g_ascii_formatd, the reference) for
 * every kind of value, ties and near-ties included. */
#include "ens-route.h"

#include <math.h>
#include <string.h>

static void
check (double v)
{
  char mine[ENS_ROUTE_FMT_BUF], ref[ENS_ROUTE_FMT_BUF];

  g_ascii_formatd (ref, sizeof ref, "%.2f", v);
  ens_route_fmt (mine, sizeof mine, v);
  if (strcmp (mine, ref) != 0)
    g_error ("%.17g: \"%s\", printf says \"%s\"", v, mine, ref);
}

static void
check_around (double v)
{
  double below = v, above = v;

  check (v);
  check (-v);
  for (int i = 0; i < 4; i++)
    {
      below = nextafter (below, -INFINITY);
      above = nextafter (above, INFINITY);
      check (below);
      check (above);
    }
}

static void
test_fmt_known (void)
{
  char buf[ENS_ROUTE_FMT_BUF];

  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, 0.7594), ==, "0.76");
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, 1), ==, "1.00");
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, 0), ==, "0.00");
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, -0.0), ==, "-0.00");
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, -0.001), ==, "-0.00");
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, 0.125), ==, "0.12");  /* a tie: to even */
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, 0.375), ==, "0.38");
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, 2.675), ==, "2.67");  /* 2.67499999... */
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, 1.005), ==, "1.00");  /* 1.00499999... */
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, 0.995), ==, "0.99");
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, 9.999), ==, "10.00");
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, 123456.785), ==, "123456.79");
  g_assert_cmpstr (ens_route_fmt (buf, sizeof buf, 1e20), ==, "100000000000000000000.00");
}

static void
test_fmt_like_printf (void)
{
  static const double special[] = { 0, 1e-300, 5e-324, 0.005, 0.015, 0.025, 0.045, 0.5, 0.994999, 0.995,
                                    1.115, 1.125, 8.345, 1e14 + 0.125, 9.99999999999999e14, 1e15, 1e15 + 0.5,
                                    4503599627370495.5, 1e300, INFINITY, NAN };
  GRand *rand = g_rand_new_with_seed (15);

  for (guint i = 0; i < G_N_ELEMENTS (special); i++)
    check_around (special[i]);
  /* Every tie and near-tie of two decimals below 1000, and of 1/8ths. */
  for (int k = 0; k < 200000; k++)
    check_around ((k + 0.5) / 100.0);
  for (int k = 0; k < 8000; k++)
    check_around (k / 8.0);
  /* Values of every magnitude. */
  for (int i = 0; i < 300000; i++)
    {
      double m = g_rand_double (rand);
      int e = g_rand_int_range (rand, -12, 18);
      check (m * pow (10, e));
      check (-m * pow (10, e));
    }
  g_rand_free (rand);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/route/fmt/known", test_fmt_known);
  g_test_add_func ("/route/fmt/like-printf", test_fmt_like_printf);
  return g_test_run ();
}
