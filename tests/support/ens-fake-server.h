/* ens-fake-server.h — raw scripted answers on a libsoup SoupServerMessage,
 * part of the ens-test-support library: the bytes of a response body
 * written piece by piece from the main loop, and connections cut where a
 * test wants them cut.  The fake upstream (ens-fake-upstream.h) builds its
 * OpenAI and Anthropic answers on these; a provider test with its own
 * handler writes its exact scenario bytes with them. */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* How a written body ends once every piece is out. */
typedef enum {
  FAKE_BODY_COMPLETE, /* the body ends normally */
  FAKE_BODY_HANG,     /* the message stays open, nothing more is written */
  FAKE_BODY_REPEAT,   /* the last piece is written again every interval, forever */
  FAKE_BODY_CUT,      /* the connection is shut down once every piece reached the socket */
} FakeBodyEnd;

typedef struct {
  guint first_ms;    /* before the headers and the first piece */
  guint interval_ms; /* between two pieces */
  gint gap_at;       /* < 0: none; else the pause before piece gap_at is gap_ms */
  guint gap_ms;
  FakeBodyEnd end;
  gboolean *closed;  /* may be NULL: set TRUE when the message finishes or its connection goes */
  guint64 *aborts;   /* may be NULL: incremented when the client goes before the body ended */
} FakeBodyPlan;

/* Answers @msg with @status and a body of @pieces (char *, transfer full)
 * written as @plan says.  A body that ends normally carries its
 * Content-Length (every piece is known up front; libsoup 3.2 closes a
 * chunked body on a worker thread, which costs more than the rest of the
 * answer); one that hangs, repeats or is cut is chunked, so a cut is an
 * unterminated chunked body.  Headers already set on @msg stay. */
void fake_server_write (SoupServerMessage *msg, guint status, const char *content_type, GPtrArray *pieces,
                        const FakeBodyPlan *plan);

/* A scripted response body: @pieces written one every @interval_ms (the
 * first at once), then the body ends, unless @hang (the message stays open)
 * or @repeat (the last piece is written again and again).  *@closed (may be
 * NULL) becomes TRUE when the server sees the connection go away or the
 * message finish. */
void fake_server_stream (SoupServerMessage *msg, const char *content_type, const char *const *pieces,
                         guint interval_ms, gboolean hang, gboolean repeat, gboolean *closed);
/* Never answers @msg (until the server goes away). */
void fake_server_hang (SoupServerMessage *msg);
/* Answers @msg at once. */
void fake_server_reply (SoupServerMessage *msg, guint status, const char *content_type, const char *body);
/* Answers @msg with @body (transfer full) after @delay_ms. */
void fake_server_reply_later (SoupServerMessage *msg, guint status, const char *content_type, char *body,
                              guint delay_ms);
/* Closes @msg's connection without an answer. */
void fake_server_reset (SoupServerMessage *msg);
/* (transfer full) the request body of @msg parsed, or NULL. */
JsonNode *fake_server_request_json (SoupServerMessage *msg);
/* Starts an HTTP server on 127.0.0.1 (a port the kernel picks) with
 * @callback for every path; returns its base URL without a trailing '/'
 * (transfer full). */
char *fake_server_start (SoupServer **server, SoupServerCallback callback, gpointer user_data);

G_END_DECLS
