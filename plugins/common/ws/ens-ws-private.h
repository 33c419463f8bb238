/* ens-ws-private.h — private to plugins/common/ws: the attachment, one
 * connection, and what the protocol files (ens-ws-neolith.c,
 * ens-ws-rhetor.c) share with the connection core (ens-ws.c). */
#pragma once

#include "ens-ws.h"
#include "ens-json-util.h"
#include "ens-outbox.h"
#include "ens-dialect.h"

typedef enum {
  ENS_WS_NATIVE,  /* /ws */
  ENS_WS_NEOLITH, /* {type, payload} on every other path of the WebSocket port */
  ENS_WS_RHETOR,  /* /ws/socket/{id} */
} EnsWsKind;

/* What to do with the answer to a core verb a connection asked. */
typedef enum {
  ENS_WS_PENDING_IGNORE,
  ENS_WS_PENDING_SPAWN,
  ENS_WS_PENDING_EXECUTE,
  ENS_WS_PENDING_STATUS,
  ENS_WS_PENDING_STOP,
  ENS_WS_PENDING_DAEMON_STATUS,
  ENS_WS_PENDING_LIST,
  ENS_WS_PENDING_WRITE,
} EnsWsPendingKind;

typedef struct {
  EnsWsPendingKind kind;
  char *session_id;
  char *task; /* execute: the task's text (its id when the core made none) */
  const EnsDialectEntry *entry; /* Neolith: the row asked (ens-dialect-neolith.c), or NULL */
} EnsWsPending;

typedef struct _EnsWsNeolith EnsWsNeolith; /* a Neolith connection's state (ens-ws-neolith.c) */

typedef struct _EnsWsConn EnsWsConn;

struct _EnsWs {
  const EnsHost *host;
  EnsPlugin *self;
  SoupServer *server;
  char *token;
  gboolean neolith;
  guint64 max_message;
  guint status_interval_ms;
  guint status_source;
  GHashTable *conns; /* EnsWsConn* set, owned */
  EnsMessage *probe_answer;
  gboolean probing;
  guint64 accepted, refused, messages_in, messages_out, dropped;
};

struct _EnsWsConn {
  EnsWs *ws;
  EnsWsKind kind;
  SoupWebsocketConnection *conn;
  GPollableOutputStream *output; /* NULL: not pollable, libsoup queues */
  GSource *writable;
  EnsClient *client;
  GSocket *socket;  /* to send what one main-loop turn writes in one piece (Neolith) */
  guint uncork_id;  /* while corked */
  char *socket_id; /* Rhetor: the session */
  EnsOutbox *out;  /* limits: the settings when it connected */
  GHashTable *watched; /* session ids subscribed to */
  GHashTable *pending; /* request id -> EnsWsPending* */
  EnsWsNeolith *neolith;
  guint64 next_id;
  gboolean gone;
};

/* ---- the connection core (ens-ws.c) ---- */

/* Queues @bytes (transfer none), one text frame, for the peer; @droppable:
 * an event the slow-consumer policy may drop. */
void ens_ws_send (EnsWsConn *c, GBytes *bytes, gboolean droppable);
/* The same with @node (transfer none) serialised, never dropped. */
void ens_ws_send_node (EnsWsConn *c, JsonNode *node);
/* {type:"error", error, code?, sessionId?, requestType?}; all (transfer none). */
void ens_ws_send_error (EnsWsConn *c, const char *code, const char *message, const char *session_id,
                        const char *request_type);
/* Submits a core verb as the connection's client; @data (transfer none),
 * @pending (transfer full) says what to do with the answer, which may come
 * before this returns. */
void ens_ws_core (EnsWsConn *c, const char *action, JsonNode *data, EnsWsPending *pending);
/* (transfer full) a pending answer; @session_id (transfer none) may be NULL. */
EnsWsPending *ens_ws_pending_new (EnsWsPendingKind kind, const char *session_id);
void ens_ws_pending_free (EnsWsPending *pending);
/* (transfer full) {session_id, task?}. */
JsonNode *ens_ws_session_params (const char *session_id, const char *task);
/* Subscribes the connection to session.<id>.* once. */
void ens_ws_watch_session (EnsWsConn *c, const char *session_id);
/* Undoes that. */
void ens_ws_unwatch_session (EnsWsConn *c, const char *session_id);
/* Subscribes the connection to @topic (transfer none). */
void ens_ws_subscribe (EnsWsConn *c, const char *topic);
/* Asks the core on a client of its own; (transfer full) the answer, or
 * NULL if the verb did not answer at once. @data (transfer none). */
EnsMessage *ens_ws_probe (EnsWs *ws, const char *action, JsonNode *data);
/* (transfer full) @node (transfer none) as compact JSON text. */
GBytes *ens_ws_node_bytes (JsonNode *node);
/* (transfer full) now, ISO 8601 UTC. */
char *ens_ws_iso_now (void);
/* (transfer full) {type, payload}; takes @payload (transfer full). */
JsonNode *ens_ws_typed_message (const char *type, JsonNode *payload);

/* ---- the Neolith orchestrator-daemon protocol (ens-ws-neolith.c) ---- */

/* A Neolith connection opened: the greeting, at once; its state. */
void ens_ws_neolith_open (EnsWsConn *c);
void ens_ws_neolith_free (EnsWsNeolith *state);
/* One {type, payload} text frame from the peer; @text (transfer none). */
void ens_ws_neolith_message (EnsWsConn *c, const char *text, gsize len);
/* The answer (transfer none) to a verb asked with @pending (transfer none). */
void ens_ws_neolith_answer (EnsWsConn *c, EnsWsPending *pending, EnsMessage *answer);
/* An event (transfer none) that reached the connection. */
void ens_ws_neolith_event (EnsWsConn *c, EnsMessage *msg);
/* A GSourceFunc on the EnsWs: daemon_status_update to every Neolith peer. */
gboolean ens_ws_neolith_status_tick (gpointer ws);

/* ---- Rhetor / aish AI sockets (ens-ws-rhetor.c) ---- */

void ens_ws_rhetor_message (EnsWsConn *c, const char *text, gsize len);
/* A session event (transfer none) for the socket's session. */
void ens_ws_rhetor_event (EnsWsConn *c, EnsMessage *msg);
