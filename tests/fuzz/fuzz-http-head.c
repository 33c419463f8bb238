/* fuzz-http-head.c — the head of a plain HTTP/1.1 request, as
 * transport-http's own connections read it (ens_http_head_parse, the
 * static library ens-http-head) before anything reaches a route.
 *
 * Input: the bytes a client sent (max_body: 2048).  Checks, for a PLAIN
 * verdict: head and body lie within the input, the head ends with the empty
 * line and holds no NUL, the request line is "GET|POST /... HTTP/1.1", the
 * Authorization and X-Request-Id slices lie within the head, a body within
 * max_body, a GET has none; the verdict holds for the same request with
 * anything after it (pipelining), and no prefix of it is PLAIN (a request
 * is never served before it is whole).  Any input: NONE only for none. */
#include "ens-fuzz.h"
#include "ens-http-head.h"

#include <string.h>

#define MAX_BODY 2048

static gboolean
within (const char *slice, gsize len, const char *start, gsize size)
{
  return slice >= start && slice + len <= start + size;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  ens_fuzz_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* A copy of its own size: the sanitizer sees every read past the end. */
  g_autofree char *in = g_memdup2 (data, size);
  EnsHttpHead head;
  EnsHttpHeadResult r = ens_http_head_parse (in, size, MAX_BODY, &head);
  gsize whole;

  ENS_FUZZ_CHECK ((r == ENS_HTTP_HEAD_NONE) == (size == 0), "NONE for %zu bytes", size);
  if (r != ENS_HTTP_HEAD_PLAIN)
    return 0;
  whole = head.head_len + head.body_len;
  ENS_FUZZ_CHECK (whole <= size && head.head_len >= 4 && head.head_len <= ENS_HTTP_HEAD_MAX,
                  "head %zu + body %zu of %zu bytes", head.head_len, head.body_len, size);
  ENS_FUZZ_CHECK (memcmp (in + head.head_len - 4, "\r\n\r\n", 4) == 0, "the head does not end with an empty line");
  ENS_FUZZ_CHECK (memchr (in, '\0', head.head_len) == NULL, "a NUL in a plain head");
  ENS_FUZZ_CHECK (head.method == in && (head.post ? head.method_len == 4 && memcmp (in, "POST", 4) == 0
                                                  : head.method_len == 3 && memcmp (in, "GET", 3) == 0),
                  "method %.*s", (int) head.method_len, head.method);
  ENS_FUZZ_CHECK (within (head.path, head.path_len, in, head.head_len) && head.path_len > 0 && head.path[0] == '/',
                  "path");
  ENS_FUZZ_CHECK (memcmp (head.path + head.path_len, " HTTP/1.1\r\n", 11) == 0, "the request line");
  ENS_FUZZ_CHECK (!head.authorization || within (head.authorization, head.authorization_len, in, head.head_len),
                  "authorization");
  ENS_FUZZ_CHECK (!head.request_id || within (head.request_id, head.request_id_len, in, head.head_len), "request id");
  ENS_FUZZ_CHECK (head.body_len <= MAX_BODY && (head.post || head.body_len == 0), "body %zu", head.body_len);

  /* The same request followed by more: the same verdict and slices. */
  {
    g_autofree char *more = g_malloc (size + 8);
    EnsHttpHead again;
    memcpy (more, in, size);
    memcpy (more + size, "GET / HT", 8);
    ENS_FUZZ_CHECK (ens_http_head_parse (more, size + 8, MAX_BODY, &again) == ENS_HTTP_HEAD_PLAIN &&
                      again.head_len == head.head_len && again.body_len == head.body_len &&
                      again.post == head.post && again.close == head.close,
                    "a request followed by more reads otherwise");
  }
  /* No part of it is a request on its own. */
  for (gsize cut = 1; cut < whole; cut += 1 + cut / 8)
    {
      g_autofree char *part = g_memdup2 (in, cut);
      EnsHttpHead p;
      ENS_FUZZ_CHECK (ens_http_head_parse (part, cut, MAX_BODY, &p) == ENS_HTTP_HEAD_OTHER,
                      "the first %zu of %zu bytes read as a whole request", cut, whole);
    }
  return 0;
}
