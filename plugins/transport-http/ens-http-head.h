/* ens-http-head.h — private to transport-http (the static library
 * ens-http-head, also linked by tests/fuzz/fuzz-http-head): reads the head
 * of one HTTP/1.1 request from a buffer, for the connections served without
 * libsoup (ens-http-conn.c).  It tells a plain request from everything else
 * and never judges the rest: what is not plain goes to libsoup, whose
 * answers (400, 411, 413, ...) stay the only ones. */
#pragma once

#include <glib.h>

/* A longer head is never plain. */
#define ENS_HTTP_HEAD_MAX 16384

typedef enum {
  ENS_HTTP_HEAD_NONE,  /* nothing buffered */
  ENS_HTTP_HEAD_PLAIN, /* a whole plain request */
  ENS_HTTP_HEAD_OTHER, /* partial, or not plain */
} EnsHttpHeadResult;

/* Slices of the buffer (not NUL-terminated), valid while it is. */
typedef struct {
  const char *method, *path;
  gsize method_len, path_len;
  gsize head_len;                     /* up to and with the empty line */
  gsize body_len;                     /* it follows the head, whole */
  const char *authorization;          /* or NULL */
  gsize authorization_len;
  const char *request_id;             /* X-Request-Id, or NULL */
  gsize request_id_len;
  gboolean post;                      /* POST, else GET */
  gboolean close;                     /* Connection: close */
} EnsHttpHead;

/* Reads the request at the start of the @len bytes at @data.  PLAIN when,
 * within them: the head is whole (at most ENS_HTTP_HEAD_MAX bytes), its
 * request line "GET|POST /path HTTP/1.1", with a Host, one Authorization at
 * most, no Transfer-Encoding, Expect, Upgrade or Origin, a Connection of
 * "close" or "keep-alive" if any; a POST has one Content-Length of at most
 * @max_body and all its body, which names no "stream" member; a GET has no
 * body.  @head is filled for PLAIN only. */
EnsHttpHeadResult ens_http_head_parse (const char *data, gsize len, gsize max_body, EnsHttpHead *head);
