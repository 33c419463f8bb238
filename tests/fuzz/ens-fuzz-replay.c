/* ens-fuzz-replay.c — main() for a fuzz target built without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named on the command line, and
 * on every file in every folder named (the seed corpus), each from a heap
 * copy of exactly its size so a sanitizer sees any read past the end.
 * Exits non-zero when there was nothing to replay. */
#include "ens-fuzz.h"

#include <stdio.h>
#include <string.h>

/* Only libFuzzer calls a custom mutator, which may call its byte mutator. */
size_t
LLVMFuzzerMutate (uint8_t *data, size_t size, size_t max_size)
{
  (void) data;
  (void) max_size;
  return size;
}

static int
by_name (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static gboolean
replay_file (const char *path, guint *count)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len;
  guint8 *copy;

  if (!g_file_get_contents (path, &contents, &len, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return FALSE;
    }
  copy = g_memdup2 (contents, len);
  LLVMFuzzerTestOneInput (copy, len);
  g_free (copy);
  (*count)++;
  return TRUE;
}

int
main (int argc, char **argv)
{
  guint count = 0;

  LLVMFuzzerInitialize (&argc, &argv);
  for (int i = 1; i < argc; i++)
    {
      if (g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        {
          g_autoptr (GError) error = NULL;
          g_autoptr (GDir) dir = g_dir_open (argv[i], 0, &error);
          g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
          const char *name;

          if (dir == NULL)
            {
              fprintf (stderr, "%s\n", error->message);
              return 1;
            }
          while ((name = g_dir_read_name (dir)))
            g_ptr_array_add (names, g_build_filename (argv[i], name, NULL));
          g_ptr_array_sort (names, by_name);
          for (guint k = 0; k < names->len; k++)
            if (!replay_file (names->pdata[k], &count))
              return 1;
        }
      else if (!replay_file (argv[i], &count))
        return 1;
    }
  printf ("%s: %u inputs replayed, no failure\n", argv[0], count);
  return count > 0 ? 0 : 1;
}
