/* ens-json-number.c — numbers as JSON text, without printf:
 * ens_json_write_int() and _uint(), and ens_json_write_double(): a double (a
 * whole number below 1e15 as an integer, else the shortest of %.15g / %.17g
 * that reads back exactly, a non-finite one as null), without printf and
 * strtod for the common case: a number from 1e-5 to 1e15.  printf costs
 * ~2,800 and strtod ~1,000 instructions a number, twice printf when 15
 * digits do not read back; here a few hundred.
 *
 * The 15 or 17 digits are those of the double's exact value, rounded to
 * nearest (ties to even), as printf rounds them: |v| × 10^k (k ≤ 22, so
 * 10^k is a double exactly) is p + e exactly (e from fma), and e decides
 * what p alone cannot.  15 digits read back when n / 10^k, one division of
 * two exact doubles (so the double nearest the decimal, as strtod finds
 * it), is the number.  Anything else goes through printf and strtod
 * (tests/unit/test-json-number.c holds the two to the same bytes). */
#include "ens-json-write.h"

#include <math.h>

/* Decimal digits without printf (which costs ~1,000 instructions a
 * number). */
void
ens_json_write_int (GString *out, gint64 value)
{
  char buf[24], *p = buf + sizeof buf;
  guint64 u = value < 0 ? 0 - (guint64) value : (guint64) value;

  do
    *--p = (char) ('0' + u % 10);
  while ((u /= 10) > 0);
  if (value < 0)
    *--p = '-';
  g_string_append_len (out, p, buf + sizeof buf - p);
}

void
ens_json_write_uint (GString *out, guint64 value)
{
  char buf[24], *p = buf + sizeof buf;

  do
    *--p = (char) ('0' + value % 10);
  while ((value /= 10) > 0);
  g_string_append_len (out, p, buf + sizeof buf - p);
}

/* 10^0 .. 10^22: each a double exactly. */
static const double pow10_exact[] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };

/* |v| × 10^k rounded to an integer as printf rounds the exact product
 * (to nearest, ties to even); *p gets the product rounded to a double, to
 * see its magnitude. */
static guint64
scaled (double a, int k, double *p)
{
  double e, f, r, t;
  guint64 n;

  *p = a * pow10_exact[k];
  e = fma (a, pow10_exact[k], -*p); /* a × 10^k - p, exactly */
  if (*p < 4503599627370496.0) /* 2^52: p - floor (p) is exact, |e| < 1/2 */
    {
      f = floor (*p);
      r = *p - f;
      n = (guint64) f;
      /* (r == 0 with e < 0, just below an integer, rounds to it: n stays.) */
      if (r > 0.5 || (r == 0.5 && (e > 0 || (e == 0 && (n & 1)))))
        n++;
      return n;
    }
  /* p is a whole number (up to 2^57 here), e what is left, |e| ≤ 8. */
  t = floor (e);
  r = e - t; /* exact */
  n = (guint64) *p + (guint64) (gint64) t;
  if (r > 0.5 || (r == 0.5 && (n & 1)))
    n++;
  return n;
}

/* The @nd (15 or 17) significant digits of @a (from 1e-5 to 1e15) and its
 * decimal exponent, as %.{nd-1}e would have them: 1; 0 when 15 digits do
 * not read back as @a; -1 when this cannot be done here. */
static int
digits_of (double a, int nd, guint64 *digits, int *exponent)
{
  guint64 n_min = (guint64) pow10_exact[nd - 1], n_end = (guint64) pow10_exact[nd];
  int x = 14, k;
  double p;
  guint64 n;

  /* The decimal exponent, from above (at most 20 steps); the scaling
   * corrects an estimate one off at a power of ten. */
  while (x > -5 && a < pow10_exact[x + 5] * 1e-5)
    x--;
  k = nd - 1 - x;
  if (k < 0 || k > 22)
    return -1;
  n = scaled (a, k, &p);
  if (p >= (double) n_end)
    {
      if (--k < 0)
        return -1;
      x++;
      n = scaled (a, k, &p);
    }
  else if (p < (double) n_min)
    {
      if (++k > 22)
        return -1;
      x--;
      n = scaled (a, k, &p);
    }
  if (n == n_end) /* rounded up to the next power of ten */
    {
      n = n_min;
      x++;
      k--;
    }
  if (k < 0 || n < n_min || n >= n_end)
    return -1;
  /* 15 digits must read back: n / 10^k, one division of two exact doubles,
   * is the double nearest the decimal, the one strtod finds. */
  if (nd == 15 && (double) n / pow10_exact[k] != a)
    return 0;
  *digits = n;
  *exponent = x;
  return 1;
}

/* The same by printf and strtod, for what the digits above do not cover. */
static void
write_double_printf (GString *out, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (value))
    {
      g_string_append (out, "null"); /* JSON has no NaN/Inf */
      return;
    }
  /* A whole number below 1e15 reads the same as %.15g writes it. */
  if (value == floor (value) && fabs (value) < 1e15 && !(value == 0 && signbit (value)))
    {
      ens_json_write_int (out, (gint64) value);
      return;
    }
  /* Shortest of %.15g/%.17g that reads back exactly: 0.1 stays 0.1. */
  g_ascii_formatd (buf, sizeof buf, "%.15g", value);
  if (g_ascii_strtod (buf, NULL) != value)
    g_ascii_formatd (buf, sizeof buf, "%.17g", value);
  g_string_append (out, buf);
}

void
ens_json_write_double (GString *out, double value)
{
  double a = fabs (value);
  guint64 n;
  int x, nd = 15, len, point;
  char digits[17], buf[40], *o = buf;

  /* Whole numbers, zeros, non-finite and far-out values. */
  if (!(a >= 1e-5 && a < 1e15) || value == floor (value))
    {
      write_double_printf (out, value);
      return;
    }
  /* %.15g when it reads back, else %.17g. */
  switch (digits_of (a, nd, &n, &x))
    {
    case 0:
      if (digits_of (a, nd = 17, &n, &x) == 1)
        break;
      G_GNUC_FALLTHROUGH;
    case -1:
      write_double_printf (out, value);
      return;
    default:
      break;
    }
  for (int i = nd - 1; i >= 0; i--, n /= 10)
    digits[i] = (char) ('0' + n % 10);
  for (len = nd; len > 1 && digits[len - 1] == '0'; len--)
    ;
  if (value < 0)
    *o++ = '-';
  if (x < -4)
    {
      /* %g's exponent form: d.ddde-05 */
      *o++ = digits[0];
      if (len > 1)
        {
          *o++ = '.';
          for (int i = 1; i < len; i++)
            *o++ = digits[i];
        }
      *o++ = 'e';
      *o++ = '-';
      *o++ = (char) ('0' + (-x) / 10);
      *o++ = (char) ('0' + (-x) % 10);
    }
  else if (x < 0)
    {
      *o++ = '0';
      *o++ = '.';
      for (int i = -1; i > x; i--)
        *o++ = '0';
      for (int i = 0; i < len; i++)
        *o++ = digits[i];
    }
  else
    {
      point = x + 1; /* digits before the point (x ≤ 14) */
      for (int i = 0; i < point; i++)
        *o++ = digits[i];
      if (len > point)
        {
          *o++ = '.';
          for (int i = point; i < len; i++)
            *o++ = digits[i];
        }
    }
  g_string_append_len (out, buf, o - buf);
}
