/* ens-process.h — agent processes started on request (ens-process.c): the
 * processes.spawn and processes.list verbs, an "ensemble.process.exited"
 * event when one exits, SIGTERM for all at shutdown. */
#pragma once

#include "ens-bus.h"
#include "ens-config.h"
#include "ens-verbs.h"

G_BEGIN_DECLS

typedef struct _EnsProcesses EnsProcesses;

EnsProcesses *ens_processes_new (EnsConfig *config, EnsBus *bus);
/* Frees what no longer runs; a process still running is forgotten, its
 * record freed when it exits. */
void ens_processes_free (EnsProcesses *processes);
void ens_processes_add_verbs (EnsProcesses *processes, EnsVerbs *verbs);
guint ens_processes_running (EnsProcesses *processes);
/* SIGTERM to every running process (a process that ignores it is not
 * waited for). */
void ens_processes_stop_all (EnsProcesses *processes);

G_END_DECLS
