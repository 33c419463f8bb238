/* ens-upstream-response.h — an HTTP/1.1 response read on bytes: the
 * status line and headers, then the body as Content-Length says, chunked,
 * or up to the end of the connection.
 *
 * Pure: no I/O, no main loop.  Feed it what the connection reads; it
 * reports the head once (1xx interim answers are skipped), then the body
 * de-chunked in pieces, then its end.  Bytes after the end are not
 * consumed (an upstream that sends them is not worth keeping). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ENS_UPSTREAM_RESPONSE_MAX_HEAD (64 * 1024) /* status line + headers */

typedef struct _EnsUpstreamResponse EnsUpstreamResponse;

typedef struct {
  /* The head is complete: status and headers can be read. */
  void (*head) (gpointer user_data);
  /* @len (> 0) bytes of the body, @data (transfer none) not NUL-terminated. */
  void (*body) (gpointer user_data, const char *data, gsize len);
  /* The body is complete. */
  void (*end) (gpointer user_data);
} EnsUpstreamResponseSink;

/* (transfer full) a reader for the answer to a request; @head_only: the
 * request was HEAD (no body follows whatever the headers say). */
EnsUpstreamResponse *ens_upstream_response_new (gboolean head_only);
void ens_upstream_response_free (EnsUpstreamResponse *response);
/* Reads the answer to the next request on the same connection. */
void ens_upstream_response_reset (EnsUpstreamResponse *response);

/* Feeds @len bytes; reports to @sink.  Returns the bytes consumed (less
 * than @len only once the answer has ended), or -1 with @error set
 * (G_IO_ERROR_INVALID_DATA) for bytes that are not an HTTP/1.x answer. */
gssize ens_upstream_response_feed (EnsUpstreamResponse *response, const char *data, gsize len,
                                   const EnsUpstreamResponseSink *sink, gpointer user_data, GError **error);
/* The connection ended (EOF).  TRUE when that completes the answer (a body
 * delimited by the end of the connection; reports end), FALSE when the
 * answer is cut short (or never began). */
gboolean ens_upstream_response_eof (EnsUpstreamResponse *response, const EnsUpstreamResponseSink *sink,
                                    gpointer user_data);

/* TRUE once any byte of an answer arrived. */
gboolean ens_upstream_response_started (EnsUpstreamResponse *response);
/* TRUE once the head has been reported. */
gboolean ens_upstream_response_has_head (EnsUpstreamResponse *response);
/* TRUE once the whole answer was read. */
gboolean ens_upstream_response_done (EnsUpstreamResponse *response);
/* TRUE when the connection can carry another request after this answer
 * (HTTP/1.1 without "Connection: close", or HTTP/1.0 with keep-alive, and a
 * body not delimited by the end of the connection). */
gboolean ens_upstream_response_keep_alive (EnsUpstreamResponse *response);

guint ens_upstream_response_status (EnsUpstreamResponse *response);
/* (transfer none, NULL when absent) the first header called @name (any
 * case), its value with surrounding blanks trimmed. */
const char *ens_upstream_response_header (EnsUpstreamResponse *response, const char *name);
/* (transfer none) the media type of Content-Type without parameters,
 * lowercase ("text/event-stream"), or NULL. */
const char *ens_upstream_response_media_type (EnsUpstreamResponse *response);

G_END_DECLS
