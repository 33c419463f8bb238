/* ens-unix-listen.h — private to transport-unix: the listening sockets.
 *
 * A listener binds one socket path (0600, replacing a stale socket file
 * only when nothing answers on it) and accepts on the main loop; each new
 * connection (non-blocking, close-on-exec) goes to the accept function with
 * what the peer's credentials say.  What a connection then is, and whether
 * there is room for it, is the transport's. */
#pragma once

#include "ens-dialect.h"

G_BEGIN_DECLS

typedef struct _EnsUnixListener EnsUnixListener;

/* @fd is the caller's to keep or close; @flags ENS_CLIENT_FLAG_ADMIN when
 * the peer is our uid or root; @peer describes it ("unix:pid=N,uid=N"). */
typedef void (*EnsUnixAcceptFunc) (EnsUnixListener *l, int fd, guint32 flags, const char *peer, gpointer user_data);

struct _EnsUnixListener {
  const EnsDialect *dialect; /* NULL: native */
  char *path;
  char *agent;    /* Centerfire: the agent the socket is for */
  gboolean admin; /* admin.sock: room beyond max-connections */
  /* (private) */
  int fd;
  GSource *source;
  EnsUnixAcceptFunc accept;
  gpointer user_data;
};

/* The socket folder is ours alone: made if missing, 0700, owned by us, not
 * a symlink. */
gboolean ens_unix_prepare_dir (const char *dir, GError **error);
/* Listens on @dir/@name; @dialect, @agent (transfer none, copied) and
 * @admin describe its connections.  NULL and @error when it cannot. */
EnsUnixListener *ens_unix_listener_new (const char *dir, const char *name, const EnsDialect *dialect, const char *agent,
                                        gboolean admin, EnsUnixAcceptFunc accept, gpointer user_data, GError **error);
/* Stops listening and removes the socket file. */
void ens_unix_listener_free (EnsUnixListener *l);

G_END_DECLS
