/* test-json-number.c — the one writer's ens_json_write_double()
 * (plugins/common/jsonwrite, its digits made without printf) writes every
 * double byte for byte as printf and strtod would (the reference below: a
 * whole number below 1e15 as an integer, else the shortest of %.15g /
 * %.17g that reads back, a non-finite one as null): numbers of every
 * magnitude and bit pattern, short decimals, milliseconds, neighbours of
 * powers of ten and of the fast path's bounds. */
#include "ens-json.h"

#include <math.h>
#include <string.h>

static guint checked;

static void
reference (GString *out, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (value))
    g_string_append (out, "null");
  else if (value == floor (value) && fabs (value) < 1e15 && !(value == 0 && signbit (value)))
    g_string_append_printf (out, "%" G_GINT64_FORMAT, (gint64) value);
  else
    {
      g_ascii_formatd (buf, sizeof buf, "%.15g", value);
      if (g_ascii_strtod (buf, NULL) != value)
        g_ascii_formatd (buf, sizeof buf, "%.17g", value);
      g_string_append (out, buf);
    }
}

static void
check (double v)
{
  g_autoptr (GString) mine = g_string_new (NULL);
  g_autoptr (GString) ref = g_string_new (NULL);

  ens_json_write_double (mine, v);
  reference (ref, v);
  if (strcmp (mine->str, ref->str) != 0)
    g_error ("%.17g (%a): \"%s\", printf and strtod say \"%s\"", v, v, mine->str, ref->str);
  checked++;
}

static void
check_around (double v, int steps)
{
  double below = v, above = v;

  check (v);
  check (-v);
  for (int i = 0; i < steps; i++)
    {
      below = nextafter (below, -INFINITY);
      above = nextafter (above, INFINITY);
      check (below);
      check (above);
      check (-below);
      check (-above);
    }
}

static const char *
written (double v)
{
  static char buf[64];
  g_autoptr (GString) out = g_string_new (NULL);

  ens_json_write_double (out, v);
  g_strlcpy (buf, out->str, sizeof buf);
  return buf;
}

static void
test_known (void)
{
  g_assert_cmpstr (written (0.7594), ==, "0.7594");
  g_assert_cmpstr (written (1.234), ==, "1.234");
  g_assert_cmpstr (written (-17.125), ==, "-17.125");
  g_assert_cmpstr (written (0.00015), ==, "0.00015");
  g_assert_cmpstr (written (1.5e-5), ==, "1.5e-05");
  g_assert_cmpstr (written (123456789012.5), ==, "123456789012.5");
  g_assert_cmpstr (written (1.0 / 3), ==, "0.33333333333333331");
  g_assert_cmpstr (written (0.1 + 0.2), ==, "0.30000000000000004");
  g_assert_cmpstr (written (100), ==, "100");
  g_assert_cmpstr (written (0), ==, "0");
  g_assert_cmpstr (written (-0.0), ==, "-0");
  g_assert_cmpstr (written (1e20), ==, "1e+20");
  g_assert_cmpstr (written (1e-7), ==, "1e-07");
  g_assert_cmpstr (written (NAN), ==, "null");
  g_assert_cmpstr (written (-INFINITY), ==, "null");
}

static void
test_like_the_writer (void)
{
  GRand *rand = g_rand_new_with_seed (1515);

  checked = 0;
  /* Powers of ten and the fast path's bounds, with their neighbours. */
  for (int j = -8; j <= 17; j++)
    check_around (pow (10, j), 64);
  check_around (9.999999999999999e14, 64);
  check_around (9.9999999999999995e-6, 64);
  for (int j = -6; j <= 15; j++)
    check_around (pow (10, j) * 0.99999999999999989, 8);
  /* Short decimals: m / 10^j with m of 1 to 17 digits. */
  for (int d = 1; d <= 17; d++)
    for (int i = 0; i < 4000; i++)
      {
        double m = floor (g_rand_double_range (rand, pow (10, d - 1), pow (10, d)));
        int j = g_rand_int_range (rand, 0, 22);
        check (m / pow (10, j));
        check (-m / pow (10, j));
      }
  /* Milliseconds of microseconds, as the core writes timings. */
  for (gint64 us = 0; us < 200000; us++)
    check (us / 1000.0);
  for (int i = 0; i < 100000; i++)
    check ((double) g_rand_int_range (rand, 0, G_MAXINT32) * 1000.0 / 1000.0 + g_rand_int_range (rand, 1, 1000) / 1000.0);
  /* Every decade, uniform within it. */
  for (int i = 0; i < 400000; i++)
    {
      int j = g_rand_int_range (rand, -8, 18);
      check (g_rand_double_range (rand, 1, 10) * pow (10, j));
    }
  /* Any bit pattern. */
  for (int i = 0; i < 400000; i++)
    {
      guint64 bits = ((guint64) g_rand_int (rand) << 32) | g_rand_int (rand);
      double v;
      memcpy (&v, &bits, sizeof v);
      check (v);
    }
  g_test_message ("%u numbers", checked);
  g_rand_free (rand);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/json-number/known", test_known);
  g_test_add_func ("/json-number/like-the-writer", test_like_the_writer);
  return g_test_run ();
}
