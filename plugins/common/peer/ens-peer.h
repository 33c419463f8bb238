/* ens-peer.h — who is at the far end of a loopback TCP connection (the
 * static library plugins/common/peer).
 *
 * TCP has no SO_PEERCRED, but on loopback both ends are sockets of this
 * machine and the kernel knows the owner of each: NETLINK_SOCK_DIAG
 * (inet_diag, what `ss -e` prints) finds the peer's socket by its 4-tuple and
 * names its uid.  A socket its owner has already closed (orphaned, or in
 * TIME_WAIT) has no owner any more and is reported as not found, never as
 * root. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The uid owning the socket at the far end of the TCP connection whose ends
 * are, as the daemon sees them, @local (its own address) and @remote (the
 * client's); both (transfer none).  FALSE with @error when that cannot be
 * told: G_IO_ERROR_NOT_FOUND when no live socket of this network namespace
 * has that 4-tuple (the client has gone, or is elsewhere),
 * G_IO_ERROR_NOT_SUPPORTED for an address that is not IP. */
gboolean ens_peer_tcp_uid (GSocketAddress *local, GSocketAddress *remote, guint32 *uid, GError **error);

/* Whether @uid may use the daemon without a token: the daemon's own
 * effective uid, or root. */
gboolean ens_peer_uid_is_trusted (guint32 uid);

G_END_DECLS
