/* ens-bench-unix.h - what the parts of ens-bench-unix share
 * (ens-bench-unix.c: the client phases and the figures;
 * ens-bench-unix-server.c: the in-binary baseline servers). */
#pragma once

#include <glib.h>
#include <pthread.h>

#define ENS_BENCH_UNIX_MAX_SUBS  256
#define ENS_BENCH_UNIX_FAN_TOPIC "bench.fan"
#define ENS_BENCH_UNIX_IO_TIMEOUT_S 5

typedef enum
{
  SRV_ECHO,   /* writes back every byte it reads */
  SRV_FANOUT, /* a connection whose first line subscribes gets, as events,
               * every line the others send (which are echoed back to them) */
} SrvMode;

typedef struct
{
  SrvMode         mode;
  int             lfd;
  char            path[108];
  pthread_t       accept_thr;
  pthread_mutex_t lock;        /* guards subs; held while fanning out */
  int             subs[ENS_BENCH_UNIX_MAX_SUBS];
  int             nsubs;
} Server;

/* Listens on @path and serves each connection on a thread of its own until
 * server_stop(); FALSE with the reason in @err. */
gboolean server_start (Server *srv, SrvMode mode, const char *path, GString *err);
/* Stops accepting, removes the socket file; connections end as their
 * clients close them. */
void server_stop (Server *srv);
