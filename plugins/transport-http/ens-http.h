/* ens-http.h — private to transport-http: the route table and what a route
 * handler may do with the request in hand.
 *
 * One table (EnsHttpRoute arrays, one per file of routes) both serves the
 * requests and generates GET /openapi.json, so the document cannot drift
 * from what is served.  Handlers run on the main loop; each request that
 * talks to the core gets its own EnsClient for its lifetime, so replies,
 * completion events and SSE streams reach exactly that request.
 *
 * The routes (ens-http-routes-*.c) and how they answer (ens-http-answer.c)
 * are the static library ens-http-routes, which reaches the request only
 * through the functions below: the plugin (ens-transport-http.c,
 * ens-http-sse.c) implements them on libsoup, the fuzz target (tests/fuzz)
 * on a fake request. */
#pragma once

#include <ensemble/ensemble.h>
#include <libsoup/soup.h>

#include "ens-http-sse.h"

typedef struct _EnsHttp EnsHttp;         /* the transport instance */
typedef struct _EnsHttpCall EnsHttpCall; /* one request in flight */

typedef void (*EnsHttpHandler) (EnsHttpCall *call);

typedef struct {
  const char *method;      /* "GET", "POST", ... */
  const char *path;        /* "/api/kv/{agent}/{key}": {name} matches one segment */
  EnsHttpHandler handler;
  const char *tag;         /* OpenAPI tag: native, centerfire, ksi, neolith, rhetor, openai, console, meta */
  const char *summary;     /* one line, for /openapi.json and /docs */
  const char *body_schema; /* JSON Schema of the request body (JSON text), or NULL */
  gboolean public;         /* reachable without the bearer token */
} EnsHttpRoute;

/* Route tables, each NULL-terminated (method == NULL). */
extern const EnsHttpRoute ens_http_routes_native[];
extern const EnsHttpRoute ens_http_routes_openai[];
extern const EnsHttpRoute ens_http_routes_embeddings[];
extern const EnsHttpRoute ens_http_routes_ksi[];
extern const EnsHttpRoute ens_http_routes_neolith[];
extern const EnsHttpRoute ens_http_routes_rhetor[];
extern const EnsHttpRoute ens_http_routes_console[];
extern const EnsHttpRoute ens_http_routes_metrics[]; /* ens-http-metrics.c */
extern const EnsHttpRoute ens_http_routes_meta[];    /* ens-http-openapi.c: /openapi.json, /docs */
extern const EnsHttpRoute ens_http_routes_mcp[];

/* ---- MCP sessions of /mcp (ens-http-routes-mcp.c) ---- */
typedef struct _EnsHttpMcp EnsHttpMcp;
EnsHttpMcp *ens_http_mcp_new (void);
/* Ends every session (their clients close). */
void ens_http_mcp_free (EnsHttpMcp *mcp);
guint ens_http_mcp_n_sessions (EnsHttpMcp *mcp);
/* (transfer none) the instance's MCP sessions. */
EnsHttpMcp *ens_http_mcp (EnsHttp *http);

/* ---- the request ---- */
const EnsHost *ens_http_host (EnsHttpCall *call);
EnsPlugin *ens_http_self (EnsHttpCall *call);
/* (transfer none) the route that matched this call. */
const EnsHttpRoute *ens_http_route (EnsHttpCall *call);
SoupServerMessage *ens_http_message (EnsHttpCall *call);
/* A {name} segment of the route's path; (transfer none), NULL if none. */
const char *ens_http_param (EnsHttpCall *call, const char *name);
/* A query parameter; (transfer none). */
const char *ens_http_query (EnsHttpCall *call, const char *name);
/* The request's body as it came, (transfer none), valid for the call. */
const char *ens_http_request_body (EnsHttpCall *call, gsize *len);
/* The JSON body as an object, (transfer none), valid for the call.
 * Returns NULL after answering 400 (malformed JSON) or 422 (not an object)
 * itself; an empty body gives an empty object. */
JsonObject *ens_http_body (EnsHttpCall *call);
/* What ens_http_body does with the bytes (ens-http-answer.c): (transfer
 * full) an object node, or NULL after answering 400 or 422. */
JsonNode *ens_http_parse_body (EnsHttpCall *call, const char *data, gsize len);
/* Ties @state to the request, which outlives the call (and its client):
 * answers or events that arrive after the reply, or never (the peer left),
 * still find it, and @free_func frees it exactly once. */
void ens_http_attach (EnsHttpCall *call, const char *key, gpointer state, GDestroyNotify free_func);
/* The base URL clients reach this server on ("http://127.0.0.1:8090"). */
const char *ens_http_base_url (EnsHttpCall *call);

/* ---- answering (each ends the call, exactly one per call) ---- */
void ens_http_reply_json (EnsHttpCall *call, guint status, JsonNode *body); /* body (transfer none) */
void ens_http_reply_text (EnsHttpCall *call, guint status, const char *content_type, const char *text);
/* The same with @body (transfer none), shared (a cached answer). */
void ens_http_reply_bytes (EnsHttpCall *call, guint status, const char *content_type, GBytes *body);
/* {error:{code,message,details}} */
void ens_http_reply_error (EnsHttpCall *call, guint status, const char *code, const char *message, JsonNode *details);
/* 422 with the failing field: {error:{code:"VALIDATION_ERROR", message, details:{fields:[{field, expected}]}}} */
void ens_http_reply_invalid (EnsHttpCall *call, const char *field, const char *expected);
/* OpenAI's error body {error:{message, type, param:null, code}} (ens-http-routes-openai.c). */
void ens_http_openai_reply_error (EnsHttpCall *call, guint status, const char *type, const char *message,
                                  const char *code);
/* What the OpenAI routes share (ens-http-routes-openai.c): the body as an
 * object (transfer none, its node in *@out), or NULL after answering 400
 * in OpenAI's shape; 400 invalid_request_error and 422 for @param; the
 * core's refusal (an ERROR answer) and a failed COMPLETION_RESULT's data as
 * OpenAI errors, with the status each deserves.  @param_rename: the
 * client's name for the core's field "max_tokens", or NULL. */
JsonObject *ens_http_openai_body (EnsHttpCall *call, JsonNode **out);
void ens_http_openai_reply_invalid (EnsHttpCall *call, const char *param, const char *message);
void ens_http_openai_reply_unprocessable (EnsHttpCall *call, const char *param, const char *message);
void ens_http_openai_reply_refusal (EnsHttpCall *call, EnsMessage *answer, const char *param_rename);
void ens_http_openai_reply_failure (EnsHttpCall *call, JsonObject *failed);
/* The HTTP status a core error code deserves (404 for AGENT_NOT_FOUND, ...). */
guint ens_http_status_for (const char *code);

/* ---- answers kept for a while ----
 * An answer a route may serve again (transfer none), NULL unless one was
 * kept under @key less than @max_age_us ago and no request reached the
 * core through this transport since (other than "health"): a change made
 * over HTTP shows at once, any other within @max_age_us. */
GBytes *ens_http_cache_get (EnsHttpCall *call, const char *key, gint64 max_age_us);
/* Keeps @body (transfer none) under @key. */
void ens_http_cache_put (EnsHttpCall *call, const char *key, GBytes *body);

/* ---- the core ---- */
/* The answer to ens_http_core: a REPLY or ERROR message, (transfer none). */
typedef void (*EnsHttpAnswerFunc) (EnsHttpCall *call, EnsMessage *answer, gpointer data);
/* Events that reach this call's client while it is open, (transfer none). */
typedef void (*EnsHttpEventFunc) (EnsHttpCall *call, EnsMessage *event, gpointer data);
/* Submits a request as this call's client (made on first use); the call is
 * paused until @func answers it.  @data (transfer none). */
void ens_http_core (EnsHttpCall *call, const char *agent, const char *action, JsonNode *data, guint32 timeout_ms,
                    EnsHttpAnswerFunc func, gpointer user_data);
/* The common case: answer with the reply's data (200) or its error. */
void ens_http_core_reply (EnsHttpCall *call, const char *agent, const char *action, JsonNode *data);
/* Answers and events for this call may come with their data as text
 * (EnsMessage.data NULL): the route reads them through host->message_data()
 * or message_data_text().  Before the call's first ens_http_core(). */
void ens_http_read_text (EnsHttpCall *call);
/* Routes the call's events to @func until the call ends. */
void ens_http_on_event (EnsHttpCall *call, EnsHttpEventFunc func, gpointer user_data);
/* The call's client id (makes the client). */
const char *ens_http_client_id (EnsHttpCall *call);
/* Holds the call open until a reply answers it (a no-op once answered). */
void ens_http_pause (EnsHttpCall *call);

/* ---- Server-Sent Events ----
 * A stream's output is bounded like every connection's (max-queue-messages,
 * max-queue-bytes, see ens-http-sse.h): bus events may be dropped for a
 * slow reader, who is told; anything else is never dropped. */
void ens_http_sse_begin (EnsHttpCall *call);
/* One frame that must arrive (an ack, a completion chunk, the end); @event
 * may be NULL; @data is one line of text (JSON); both (transfer none). */
void ens_http_sse_send (EnsHttpCall *call, const char *event, const char *data);
/* One bus event: @frame (transfer none) is the whole frame ("event: ...\n
 * data: ...\n\n"), made once per message with host->message_encode so that
 * every stream shares the same bytes.  The slow-reader policy may drop it. */
void ens_http_sse_send_event (EnsHttpCall *call, GBytes *frame);
/* How this stream tells its reader about dropped events (after sse_begin). */
void ens_http_sse_on_dropped (EnsHttpCall *call, EnsHttpSseNoticeFunc notice, gpointer data);
/* An SSE comment line (": @text"), never dropped: sends the headers at once. */
void ens_http_sse_comment (EnsHttpCall *call, const char *text);
/* Ends the stream and the call, once what is queued is written. */
void ens_http_sse_end (EnsHttpCall *call);
/* Called once if the peer goes away before the call ended. */
void ens_http_on_disconnect (EnsHttpCall *call, void (*func) (EnsHttpCall *call, gpointer data), gpointer data);

/* ---- the transport itself ---- */
/* Its own metrics (requests by route, durations, refusals), appended. */
void ens_http_metrics_text (EnsHttp *http, GString *out);
EnsHttp *ens_http_instance (EnsHttpCall *call);
/* Every route served, in table order: const EnsHttpRoute*, (transfer none). */
const GPtrArray *ens_http_routes (EnsHttp *http);
/* TRUE when http-token-file is set: every route but the public ones needs it. */
gboolean ens_http_token_required (EnsHttp *http);
