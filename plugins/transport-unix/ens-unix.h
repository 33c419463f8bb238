/* ens-unix.h — private to transport-unix: connections and the dialects. */
#pragma once

#include <ensemble/ensemble.h>

typedef enum {
  ENS_DIALECT_NATIVE,
  ENS_DIALECT_KSI,
  ENS_DIALECT_CENTERFIRE,
} EnsDialect;

typedef struct _EnsUnixConn EnsUnixConn;

/* Provided by the transport for the dialects. */
const EnsHost *ens_unix_host (EnsUnixConn *conn);
EnsClient *ens_unix_client (EnsUnixConn *conn);
const char *ens_unix_agent (EnsUnixConn *conn); /* Centerfire: the socket's agent */
/* Queues (transfer none) bytes for the peer, outside the event policy. */
void ens_unix_send (EnsUnixConn *conn, GBytes *bytes);
/* KSI: one command per connection unless it connected an agent. */
void ens_unix_keep_open (EnsUnixConn *conn);

/* KSI multi-socket dialect (ens-dialect-ksi.c). */
void ens_ksi_set_host (const EnsHost *host);
void ens_ksi_handle_line (EnsUnixConn *conn, const char *line, gsize len);
GBytes *ens_ksi_encode (EnsMessage *msg);

/* Centerfire per-agent dialect (ens-dialect-centerfire.c). */
void ens_centerfire_handle_line (EnsUnixConn *conn, const char *line, gsize len);
